package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Config shapes the inventory. Every field is optional.
type Config struct {
	User           string     `json:"user"`
	Password       string     `json:"password"`
	VMCount        *int       `json:"vm_count"`         // model.Machine: VMs per standalone host / cluster
	RemoveOtherVMs bool       `json:"remove_other_vms"` // destroy default VMs not named in VMs
	VMs            []VMConfig `json:"vms"`
	// disk_image of every VM that has none configured (listed or not).
	DefaultDiskImage string `json:"default_disk_image"`
	// QueryChangedDiskAreas answers cover at most this many bytes from
	// startOffset (default 64 MiB).
	CBTQueryWindowBytes *int64 `json:"cbt_query_window_bytes"`
}

func (c *Config) cbtWindow() int64 {
	if c.CBTQueryWindowBytes == nil {
		return defaultCBTWindow
	}
	return *c.CBTQueryWindowBytes
}

// VMConfig customises one of the model's default VMs, found by Name.
type VMConfig struct {
	Name       string       `json:"name"`
	Rename     string       `json:"rename"`
	DiskImage  string       `json:"disk_image"` // RAW image installed as the first disk
	ExtraDisks []DiskConfig `json:"extra_disks"`
	PowerState string       `json:"power_state"` // poweredOn | poweredOff | suspended
	CBT        *bool        `json:"cbt"`
	Firmware   string       `json:"firmware"` // bios | efi
	MACs       []string     `json:"macs"`
	ISO        string       `json:"iso"` // "[LocalDS_0] foo.iso"
	MemoryMB   int64        `json:"memory_mb"`
	CPUs       int32        `json:"cpus"`
	// What VMware Tools would report: NIC i's address "IP/PREFIX" (guest.net)
	// and the default gateway (guest.ipStack).
	GuestIPs []string `json:"guest_ips"`
	Gateway  string   `json:"gateway"`
}

// DiskConfig is an additional disk made from a RAW image.
type DiskConfig struct {
	DiskImage string `json:"disk_image"`
	Shared    bool   `json:"shared"` // sharing mode sharingMultiWriter
}

func loadConfig(file string) (*Config, error) {
	cfg := &Config{}
	if file != "" {
		data, err := ioutil.ReadFile(file)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	if cfg.User == "" {
		cfg.User = defaultUser
	}
	if cfg.Password == "" {
		cfg.Password = defaultPassword
	}
	if cfg.VMCount != nil && *cfg.VMCount < 0 {
		return nil, fmt.Errorf("config: vm_count must be >= 0")
	}
	if cfg.CBTQueryWindowBytes != nil && *cfg.CBTQueryWindowBytes <= 0 {
		return nil, fmt.Errorf("config: cbt_query_window_bytes must be > 0")
	}
	seen := map[string]bool{}
	for i, vm := range cfg.VMs {
		if vm.Name == "" {
			return nil, fmt.Errorf("config: vms[%d] has no name", i)
		}
		if seen[vm.Name] {
			return nil, fmt.Errorf("config: vm %q listed twice", vm.Name)
		}
		seen[vm.Name] = true
		switch vm.PowerState {
		case "", "poweredOn", "poweredOff", "suspended":
		default:
			return nil, fmt.Errorf("config: vm %q: bad power_state %q", vm.Name, vm.PowerState)
		}
		switch vm.Firmware {
		case "", "bios", "efi":
		default:
			return nil, fmt.Errorf("config: vm %q: bad firmware %q", vm.Name, vm.Firmware)
		}
		for _, mac := range vm.MACs {
			if strings.HasPrefix(strings.ToLower(mac), generatedMACPrefix) {
				return nil, fmt.Errorf("config: vm %q: MAC %s: %s... is for the MACs the simulator generates", vm.Name, mac, generatedMACPrefix)
			}
		}
	}
	return cfg, nil
}

// customise applies cfg to the freshly created model, through the
// simulator's API (in process), so that everything the property collector
// reports is consistent.
func customise(ctx context.Context, c *vim25.Client, cfg *Config) error {
	all, err := allVMs(ctx, c)
	if err != nil {
		return err
	}
	byName := map[string]mo.VirtualMachine{}
	for _, vm := range all {
		byName[vm.Name] = vm
	}
	for _, vc := range cfg.VMs {
		if _, ok := byName[vc.Name]; !ok {
			return fmt.Errorf("config: no VM named %q in the model (vm_count too small?)", vc.Name)
		}
	}

	if cfg.RemoveOtherVMs {
		wanted := map[string]bool{}
		for _, vc := range cfg.VMs {
			wanted[vc.Name] = true
		}
		for _, vm := range all {
			if wanted[vm.Name] {
				continue
			}
			obj := object.NewVirtualMachine(c, vm.Self)
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
				if err := waitTask(ctx, obj.PowerOff); err != nil {
					return fmt.Errorf("powering off %s: %w", vm.Name, err)
				}
			}
			if err := waitTask(ctx, obj.Destroy); err != nil {
				return fmt.Errorf("destroying %s: %w", vm.Name, err)
			}
			delete(byName, vm.Name)
		}
	}

	// Every NIC without a configured MAC gets its own: VM number n (by
	// the model's VM names, sorted) has 00:0c:29:.. + 16n+1 .. 16n+16.
	var names []string
	for _, vm := range all {
		if _, exists := byName[vm.Name]; exists {
			names = append(names, vm.Name)
		}
	}
	sort.Strings(names)
	macBlock := map[types.ManagedObjectReference]int{}
	for n, name := range names {
		macBlock[byName[name].Self] = n
	}
	autoMAC := func(ref types.ManagedObjectReference) func(int) string {
		n := macBlock[ref]
		return func(nic int) string { return generatedMAC(16*n + 1 + nic%16) }
	}

	// Configured VMs get their settings; every VM gets vSphere-like device
	// keys and layout (see shapeDevices).
	configured := map[types.ManagedObjectReference]bool{}
	for _, vc := range cfg.VMs {
		ref := byName[vc.Name].Self
		configured[ref] = true
		if vc.DiskImage == "" {
			vc.DiskImage = cfg.DefaultDiskImage
		}
		if err := customiseVM(ctx, c, ref, vc, byName, autoMAC(ref)); err != nil {
			return fmt.Errorf("vm %s: %w", vc.Name, err)
		}
		if vc.Rename != "" {
			byName[vc.Rename] = byName[vc.Name]
		}
	}
	// The others, on all CPUs: thousands of VMs take seconds each way.
	var rest []mo.VirtualMachine
	for _, vm := range all {
		if _, exists := byName[vm.Name]; exists && !configured[vm.Self] {
			rest = append(rest, vm)
		}
	}
	workers := runtime.NumCPU()
	if workers > 8 {
		workers = 8
	}
	if workers > len(rest) {
		workers = len(rest)
	}
	next := make(chan mo.VirtualMachine)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			var first error
			for vm := range next {
				if first != nil {
					continue
				}
				if err := customiseVM(ctx, c, vm.Self, VMConfig{Name: vm.Name, DiskImage: cfg.DefaultDiskImage}, byName, autoMAC(vm.Self)); err != nil {
					first = fmt.Errorf("vm %s: %w", vm.Name, err)
				}
			}
			errs <- first
		}()
	}
	for _, vm := range rest {
		next <- vm
	}
	close(next)
	var firstErr error
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// generatedMACPrefix: MACs the simulator makes up (ESXi's own prefix for
// generated addresses); configured MACs may not use it.
const generatedMACPrefix = "00:0c:29:"

func generatedMAC(n int) string {
	return fmt.Sprintf("%s%02x:%02x:%02x", generatedMACPrefix, (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

func allVMs(ctx context.Context, c *vim25.Client) ([]mo.VirtualMachine, error) {
	var refs []types.ManagedObjectReference
	for _, e := range simulator.Map.All("VirtualMachine") {
		refs = append(refs, e.Reference())
	}
	var vms []mo.VirtualMachine
	if len(refs) == 0 {
		return vms, nil
	}
	err := property.DefaultCollector(c).Retrieve(ctx, refs, nil, &vms)
	return vms, err
}

func waitTask(ctx context.Context, f func(context.Context) (*object.Task, error)) error {
	task, err := f(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

func reconfigure(ctx context.Context, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	return waitTask(ctx, func(ctx context.Context) (*object.Task, error) { return vm.Reconfigure(ctx, spec) })
}

func customiseVM(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, vc VMConfig, byName map[string]mo.VirtualMachine, autoMAC func(int) string) error {
	vm := object.NewVirtualMachine(c, ref)
	var cur mo.VirtualMachine
	if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"name", "config.files", "runtime.powerState"}, &cur); err != nil {
		return err
	}

	// Settings that are plain config properties, in one reconfigure.
	spec := types.VirtualMachineConfigSpec{}
	changed := false
	if vc.Rename != "" && vc.Rename != cur.Name {
		if _, taken := byName[vc.Rename]; taken {
			return fmt.Errorf("rename: a VM named %q already exists", vc.Rename)
		}
		spec.Name = vc.Rename
		changed = true
	}
	if vc.Firmware != "" {
		spec.Firmware = vc.Firmware
		changed = true
	}
	if vc.CBT != nil {
		spec.ChangeTrackingEnabled = types.NewBool(*vc.CBT)
		changed = true
	}
	if vc.MemoryMB > 0 {
		spec.MemoryMB = vc.MemoryMB
		changed = true
	}
	if vc.CPUs > 0 {
		spec.NumCPUs = vc.CPUs
		changed = true
	}
	if changed {
		if err := reconfigure(ctx, vm, spec); err != nil {
			return err
		}
	}
	name := cur.Name
	if vc.Rename != "" {
		name = vc.Rename
	}

	// Where the VM's files live: "[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmx".
	var vmx object.DatastorePath
	if !vmx.FromString(cur.Config.Files.VmPathName) {
		return fmt.Errorf("cannot parse vmPathName %q", cur.Config.Files.VmPathName)
	}
	ds, err := datastoreByName(vmx.Datastore)
	if err != nil {
		return err
	}
	vmDir := path.Dir(vmx.Path) // relative to the datastore
	fileBase := strings.NewReplacer("/", "_", " ", "_").Replace(name)

	if err := shapeDevices(ctx, vm, vc, vmFiles{ds, vmx.Datastore, vmDir, fileBase}, autoMAC); err != nil {
		return err
	}

	if vc.PowerState != "" {
		if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"runtime.powerState"}, &cur); err != nil {
			return err
		}
		state := cur.Runtime.PowerState
		want := types.VirtualMachinePowerState(vc.PowerState)
		if state != want {
			if state == types.VirtualMachinePowerStateSuspended || want == types.VirtualMachinePowerStatePoweredOff {
				if state != types.VirtualMachinePowerStatePoweredOff {
					if err := waitTask(ctx, vm.PowerOff); err != nil {
						return err
					}
				}
			}
			switch want {
			case types.VirtualMachinePowerStatePoweredOn:
				err = waitTask(ctx, vm.PowerOn)
			case types.VirtualMachinePowerStateSuspended:
				if state == types.VirtualMachinePowerStatePoweredOff {
					if err = waitTask(ctx, vm.PowerOn); err != nil {
						return err
					}
				}
				err = waitTask(ctx, vm.Suspend)
			}
			if err != nil {
				return fmt.Errorf("power %s: %w", vc.PowerState, err)
			}
		}
	}
	if len(vc.GuestIPs) > 0 || vc.Gateway != "" {
		if err := setGuestNetwork(ctx, vm, vc); err != nil {
			return fmt.Errorf("guest_ips: %w", err)
		}
	}
	return nil
}

// setGuestNetwork sets guest.net (one entry per NIC, with the configured
// addresses) and guest.ipStack (the default route), as VMware Tools reports them.
func setGuestNetwork(ctx context.Context, vm *object.VirtualMachine, vc VMConfig) error {
	devices, err := vm.Device(ctx)
	if err != nil {
		return err
	}
	var nics []types.GuestNicInfo
	for i, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		card := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		info := types.GuestNicInfo{MacAddress: card.MacAddress, Connected: true, DeviceConfigId: card.Key}
		if i < len(vc.GuestIPs) {
			ip, ipnet, err := net.ParseCIDR(vc.GuestIPs[i])
			if err != nil {
				return fmt.Errorf("%q: want IP/PREFIX", vc.GuestIPs[i])
			}
			prefix, _ := ipnet.Mask.Size()
			info.IpAddress = []string{ip.String()}
			info.IpConfig = &types.NetIpConfigInfo{IpAddress: []types.NetIpConfigInfoIpAddress{{
				IpAddress: ip.String(), PrefixLength: int32(prefix), State: "preferred"}}}
		}
		nics = append(nics, info)
	}
	if len(vc.GuestIPs) > len(nics) {
		return fmt.Errorf("%d addresses for %d NICs", len(vc.GuestIPs), len(nics))
	}
	var stack []types.GuestStackInfo
	if vc.Gateway != "" {
		if net.ParseIP(vc.Gateway) == nil {
			return fmt.Errorf("gateway %q is not an IP address", vc.Gateway)
		}
		stack = []types.GuestStackInfo{{IpRouteConfig: &types.NetIpRouteConfigInfo{
			IpRoute: []types.NetIpRouteConfigInfoIpRoute{{
				Network: "0.0.0.0", PrefixLength: 0,
				Gateway: types.NetIpRouteConfigInfoGateway{IpAddress: vc.Gateway}}}}}}
	}
	obj, ok := simulator.Map.Get(vm.Reference()).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("VM %s not found", vm.Reference().Value)
	}
	simulator.Map.WithLock(obj, func() {
		simulator.Map.Update(obj, []types.PropertyChange{
			{Name: "guest.net", Val: nics},
			{Name: "guest.ipStack", Val: stack},
		})
	})
	return nil
}

// Datastores by name. simulator.Map.All walks every object of the
// inventory under the registry's lock, so with thousands of VMs a walk per
// disk (or per /folder request) made startup quadratic; the cache is
// checked against the registry and rebuilt on a miss.
var dsCache struct {
	sync.Mutex
	byName map[string]*simulator.Datastore
}

// refreshDatastoresLocked rebuilds the cache; dsCache must be held.
func refreshDatastoresLocked() {
	dsCache.byName = map[string]*simulator.Datastore{}
	for _, e := range simulator.Map.All("Datastore") {
		if ds, ok := e.(*simulator.Datastore); ok {
			dsCache.byName[ds.Name] = ds
		}
	}
}

func datastoreByName(name string) (*simulator.Datastore, error) {
	dsCache.Lock()
	defer dsCache.Unlock()
	if ds := dsCache.byName[name]; ds != nil && simulator.Map.Get(ds.Self) == ds {
		return ds, nil
	}
	refreshDatastoresLocked()
	if ds := dsCache.byName[name]; ds != nil {
		return ds, nil
	}
	return nil, fmt.Errorf("no datastore named %q", name)
}

// allDatastores lists the datastores (from the cache while it is current).
func allDatastores() []*simulator.Datastore {
	dsCache.Lock()
	defer dsCache.Unlock()
	for _, ds := range dsCache.byName {
		if simulator.Map.Get(ds.Self) != ds {
			dsCache.byName = nil
			break
		}
	}
	if dsCache.byName == nil {
		refreshDatastoresLocked()
	}
	var out []*simulator.Datastore
	for _, ds := range dsCache.byName {
		out = append(out, ds)
	}
	return out
}

// dsLocalPath maps "[ds] dir/file" to the file on the local disk.
func dsLocalPath(dsPath string) (string, bool) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", false
	}
	ds, err := datastoreByName(p.Datastore)
	if err != nil {
		return "", false
	}
	return filepath.Join(ds.Info.GetDatastoreInfo().Url, p.Path), true
}

func flatName(descriptor string) string {
	return strings.TrimSuffix(descriptor, ".vmdk") + "-flat.vmdk"
}

func removeDiskFiles(dsPath string) {
	if local, ok := dsLocalPath(dsPath); ok && strings.HasSuffix(local, ".vmdk") {
		_ = os.Remove(local)
		_ = os.Remove(flatName(local))
	}
}

// installFlatVMDK makes descriptor (…/NAME.vmdk) and its extent
// (…/NAME-flat.vmdk, a sparse copy of the RAW image, padded to whole
// sectors) and returns the disk size in bytes.
func installFlatVMDK(image, descriptor string) (int64, error) {
	st, err := os.Stat(image)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("disk image %s is not a regular file", image)
	}
	flat := flatName(descriptor)
	if err := os.MkdirAll(filepath.Dir(descriptor), 0o755); err != nil {
		return 0, err
	}
	_ = os.Remove(flat)
	if st.Size() <= smallImage {
		// In process: thousands of VMs may share one small image.
		if err := copySparse(image, flat); err != nil {
			return 0, fmt.Errorf("copying %s: %w", image, err)
		}
	} else {
		out, err := exec.Command("cp", "--sparse=always", "--reflink=auto", image, flat).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("copying %s: %v: %s", image, err, strings.TrimSpace(string(out)))
		}
	}
	size := (st.Size() + 511) / 512 * 512
	if size == 0 {
		return 0, fmt.Errorf("disk image %s is empty", image)
	}
	if size != st.Size() {
		if err := os.Truncate(flat, size); err != nil {
			return 0, err
		}
	}
	if err := writeDescriptor(descriptor, size); err != nil {
		return 0, err
	}
	return size, nil
}

const smallImage = 16 << 20

// copySparse copies a small file, leaving holes where it has 4 KiB of zeros.
func copySparse(from, to string) error {
	data, err := ioutil.ReadFile(from)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	const block = 4096
	for off := 0; off < len(data); off += block {
		end := off + block
		if end > len(data) {
			end = len(data)
		}
		if bytes.Count(data[off:end], []byte{0}) == end-off {
			continue
		}
		if _, err := f.WriteAt(data[off:end], int64(off)); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeDescriptor writes a monolithicFlat VMDK descriptor for a disk of
// size bytes whose extent is the matching NAME-flat.vmdk.
func writeDescriptor(descriptor string, size int64) error {
	sectors := size / 512
	// Geometry as VMware computes it for SCSI disks (255 heads, 63 sectors).
	cylinders := sectors / (255 * 63)
	if cylinders > 65535 {
		cylinders = 65535
	}
	if cylinders == 0 {
		cylinders = 1
	}
	desc := fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW %d FLAT "%s" 0

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "13"
`, sectors, filepath.Base(flatName(descriptor)), cylinders)
	if err := ioutil.WriteFile(descriptor, []byte(desc), 0o644); err != nil {
		return err
	}
	return nil
}

// completeModelDisk gives one of the model's own (empty) disk files a
// descriptor and a sparse extent of the disk's capacity, so that they look
// like the disk the inventory describes.
func completeModelDisk(dsPath string, capacity int64) {
	local, ok := dsLocalPath(dsPath)
	if !ok || capacity <= 0 || capacity%512 != 0 {
		return
	}
	st, err := os.Stat(local)
	if err != nil || st.Size() != 0 {
		return
	}
	flat := flatName(local)
	if fst, err := os.Stat(flat); err != nil || fst.Size() > capacity {
		return
	}
	if os.Truncate(flat, capacity) == nil {
		_ = writeDescriptor(local, capacity)
	}
}
