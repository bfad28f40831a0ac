package main

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Device work for a configured VM.
//
// Two things to know about the in-process client:
//   - property retrieval hands out the simulator's own device objects, so a
//     device is never modified in place: we edit shallow copies;
//   - the simulator keeps any device key > 0 that is free, so new devices
//     get vSphere's usual keys (disks 2000+16*bus+unit, CD-ROM 3000+,
//     NICs 4000+) instead of the simulator's made-up ones.

type vmFiles struct {
	ds       *simulator.Datastore
	dsName   string
	vmDir    string // relative to the datastore root
	fileBase string // base name for new disk files
}

func (f vmFiles) dsPath(rel string) string { return fmt.Sprintf("[%s] %s", f.dsName, rel) }
func (f vmFiles) local(rel string) string {
	return filepath.Join(f.ds.Info.GetDatastoreInfo().Url, rel)
}

// shallowCopy returns a new *T holding a copy of *v.
func shallowCopy(v interface{}) interface{} {
	rv := reflect.ValueOf(v)
	c := reflect.New(rv.Elem().Type())
	c.Elem().Set(rv.Elem())
	return c.Interface()
}

func change(op types.VirtualDeviceConfigSpecOperation, d types.BaseVirtualDevice) types.BaseVirtualDeviceConfigSpec {
	return &types.VirtualDeviceConfigSpec{Operation: op, Device: d}
}

func applyChanges(ctx context.Context, vm *object.VirtualMachine, changes ...types.BaseVirtualDeviceConfigSpec) error {
	return reconfigure(ctx, vm, types.VirtualMachineConfigSpec{DeviceChange: changes})
}

func freeKey(devices object.VirtualDeviceList, from int32) int32 {
	for k := from; ; k++ {
		if devices.FindByKey(k) == nil {
			return k
		}
	}
}

func freeUnit(devices object.VirtualDeviceList, controllerKey int32, reserved int32, from int32) int32 {
	used := map[int32]bool{reserved: true}
	for _, d := range devices {
		vd := d.GetVirtualDevice()
		if vd.ControllerKey == controllerKey && vd.UnitNumber != nil {
			used[*vd.UnitNumber] = true
		}
	}
	u := from
	for used[u] {
		u++
	}
	return u
}

func newDiskUUID() string {
	// vSphere shows disk UUIDs as 6000C29x-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
	u := strings.ToUpper(uuid.New().String())
	return "6000C29" + u[7:]
}

// shapeDevices gives the VM vSphere-like devices and what vc configures.
// autoMAC(i) is the MAC for NIC i when vc.MACs does not name one.
func shapeDevices(ctx context.Context, vm *object.VirtualMachine, vc VMConfig, files vmFiles, autoMAC func(int) string) error {
	devices, err := vm.Device(ctx)
	if err != nil {
		return err
	}
	scsi, err := devices.FindSCSIController("")
	if err != nil {
		return err
	}
	bus := scsi.BusNumber
	dsRef := files.ds.Self

	newDisk := func(devices object.VirtualDeviceList, unit int32, rel string, size int64, shared bool, label string) *types.VirtualDisk {
		b := &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
				FileName:  files.dsPath(rel),
				Datastore: &dsRef,
			},
			DiskMode:        string(types.VirtualDiskModePersistent),
			ThinProvisioned: types.NewBool(!shared),
			EagerlyScrub:    types.NewBool(shared),
			Sharing:         string(types.VirtualDiskSharingSharingNone),
			Uuid:            newDiskUUID(),
		}
		if shared {
			// Multi-writer disks are eager-zeroed thick on real vSphere.
			b.Sharing = string(types.VirtualDiskSharingSharingMultiWriter)
		}
		u := unit
		return &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key:           freeKey(devices, 2000+16*bus+unit),
				DeviceInfo:    &types.Description{Label: label},
				Backing:       b,
				ControllerKey: scsi.Key,
				UnitNumber:    &u,
			},
			CapacityInBytes: size,
			CapacityInKB:    size / 1024,
		}
	}

	// Re-key the model's disks as vSphere would (2000 + 16*bus + unit),
	// label them "Hard disk N" and give them a UUID.
	if err := rekeyDisks(ctx, vm, devices); err != nil {
		return err
	}
	if devices, err = vm.Device(ctx); err != nil {
		return err
	}

	// The first disk becomes the RAW image.
	if vc.DiskImage != "" {
		disks := devices.SelectByType((*types.VirtualDisk)(nil))
		if len(disks) == 0 {
			return fmt.Errorf("the VM has no disk to replace")
		}
		old := disks[0].(*types.VirtualDisk)
		var oldFile string
		if b, ok := old.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			oldFile = b.GetVirtualDeviceFileBackingInfo().FileName
		}
		rel := path.Join(files.vmDir, files.fileBase+".vmdk")
		size, err := installFlatVMDK(vc.DiskImage, files.local(rel))
		if err != nil {
			return err
		}
		unit := int32(0)
		if old.UnitNumber != nil {
			unit = *old.UnitNumber
		}
		rest := devices.Select(func(d types.BaseVirtualDevice) bool { return d.GetVirtualDevice().Key != old.Key })
		disk := newDisk(rest, unit, rel, size, false, "Hard disk 1")
		disk.ControllerKey = old.ControllerKey
		if err := applyChanges(ctx, vm,
			change(types.VirtualDeviceConfigSpecOperationRemove, old),
			change(types.VirtualDeviceConfigSpecOperationAdd, disk)); err != nil {
			return fmt.Errorf("replacing the first disk: %w", err)
		}
		if oldFile != "" && oldFile != files.dsPath(rel) {
			removeDiskFiles(oldFile)
		}
	}

	for i, ed := range vc.ExtraDisks {
		if ed.DiskImage == "" {
			return fmt.Errorf("extra_disks[%d]: disk_image is required", i)
		}
		if devices, err = vm.Device(ctx); err != nil {
			return err
		}
		rel := path.Join(files.vmDir, fmt.Sprintf("%s_%d.vmdk", files.fileBase, i+1))
		size, err := installFlatVMDK(ed.DiskImage, files.local(rel))
		if err != nil {
			return err
		}
		unit := freeUnit(devices, scsi.Key, scsi.ScsiCtlrUnitNumber, 0)
		n := len(devices.SelectByType((*types.VirtualDisk)(nil))) + 1
		disk := newDisk(devices, unit, rel, size, ed.Shared, fmt.Sprintf("Hard disk %d", n))
		if err := applyChanges(ctx, vm, change(types.VirtualDeviceConfigSpecOperationAdd, disk)); err != nil {
			return fmt.Errorf("adding extra disk %d: %w", i+1, err)
		}
	}

	for i, mac := range vc.MACs {
		if devices, err = vm.Device(ctx); err != nil {
			return err
		}
		nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
		var nic types.BaseVirtualDevice
		op := types.VirtualDeviceConfigSpecOperationEdit
		if i < len(nics) {
			nic = shallowCopy(nics[i]).(types.BaseVirtualDevice)
		} else {
			// More MACs than NICs: add a vmxnet3 on the first NIC's network.
			var backing types.BaseVirtualDeviceBackingInfo
			if len(nics) > 0 {
				backing = shallowCopy(nics[0].GetVirtualDevice().Backing).(types.BaseVirtualDeviceBackingInfo)
			} else {
				backing = &types.VirtualEthernetCardNetworkBackingInfo{
					VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
				}
			}
			if nic, err = devices.CreateEthernetCard("vmxnet3", backing); err != nil {
				return err
			}
			pci := devices.PickController((*types.VirtualPCIController)(nil))
			if pci == nil {
				return fmt.Errorf("no PCI controller")
			}
			vd := nic.GetVirtualDevice()
			vd.Key = freeKey(devices, 4000+int32(i))
			vd.ControllerKey = pci.GetVirtualController().Key
			unit := freeUnit(devices, vd.ControllerKey, -1, 7+int32(i))
			vd.UnitNumber = &unit
			vd.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true}
			op = types.VirtualDeviceConfigSpecOperationAdd
		}
		card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		card.DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", i+1)}
		card.MacAddress = strings.ToLower(mac)
		card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
		card.WakeOnLanEnabled = types.NewBool(true)
		if err := applyChanges(ctx, vm, change(op, nic)); err != nil {
			return fmt.Errorf("setting MAC %s: %w", mac, err)
		}
	}

	// The rest goes into one reconfigure (each costs as much as one per
	// device), computed on the device list as it will be:
	//   - CD-ROM: the model's default VMs have theirs on the SCSI
	//     controller, at the first disk's unit number. Put one on IDE 0:0
	//     as vSphere does, with the ISO if one is configured.
	//   - NICs without a configured MAC get their own one: the model
	//     derives MACs from 3 characters of the VM's UUID string, which
	//     its VMs share.
	//   - Controllers list their devices' keys on vSphere; the simulator
	//     does not maintain that. SCSI controllers get vSphere's labels.
	if devices, err = vm.Device(ctx); err != nil {
		return err
	}
	var changes []types.BaseVirtualDeviceConfigSpec
	final := devices
	var ide *types.VirtualIDEController
	for _, d := range devices.SelectByType((*types.VirtualIDEController)(nil)) {
		c := d.(*types.VirtualIDEController)
		if ide == nil || c.BusNumber < ide.BusNumber {
			ide = c
		}
	}
	if ide != nil {
		var backing types.BaseVirtualDeviceBackingInfo = &types.VirtualCdromRemotePassthroughBackingInfo{}
		for _, d := range devices.SelectByType((*types.VirtualCdrom)(nil)) {
			if b := d.GetVirtualDevice().Backing; b != nil {
				backing = shallowCopy(b).(types.BaseVirtualDeviceBackingInfo)
			}
			changes = append(changes, change(types.VirtualDeviceConfigSpecOperationRemove, d))
		}
		connect := &types.VirtualDeviceConnectInfo{AllowGuestControl: true}
		if vc.ISO != "" {
			iso := &types.VirtualCdromIsoBackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: vc.ISO},
			}
			var p object.DatastorePath
			if p.FromString(vc.ISO) {
				if isoDS, err := datastoreByName(p.Datastore); err == nil {
					ref := isoDS.Self
					iso.Datastore = &ref
				}
			}
			backing = iso
			connect.StartConnected, connect.Connected = true, true
		}
		rest := devices.SelectByType((*types.VirtualCdrom)(nil))
		remaining := devices.Select(func(d types.BaseVirtualDevice) bool { return rest.FindByKey(d.GetVirtualDevice().Key) == nil })
		unit := freeUnit(remaining, ide.Key, -1, 0)
		cdrom := &types.VirtualCdrom{VirtualDevice: types.VirtualDevice{
			Key:           freeKey(remaining, 3000),
			DeviceInfo:    &types.Description{Label: "CD/DVD drive 1"},
			Backing:       backing,
			Connectable:   connect,
			ControllerKey: ide.Key,
			UnitNumber:    &unit,
		}}
		changes = append(changes, change(types.VirtualDeviceConfigSpecOperationAdd, cdrom))
		final = append(append(object.VirtualDeviceList{}, remaining...), cdrom)
	} else if vc.ISO != "" {
		return fmt.Errorf("iso: the VM has no IDE controller")
	}

	for i, d := range final.SelectByType((*types.VirtualEthernetCard)(nil)) {
		if i < len(vc.MACs) || autoMAC == nil {
			continue
		}
		card := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		mac := autoMAC(i)
		label := fmt.Sprintf("Network adapter %d", i+1)
		if card.MacAddress == mac && card.DeviceInfo != nil && card.DeviceInfo.GetDescription().Label == label {
			continue
		}
		nic := shallowCopy(d).(types.BaseVirtualDevice)
		ec := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		ec.MacAddress = mac
		ec.DeviceInfo = &types.Description{Label: label}
		changes = append(changes, change(types.VirtualDeviceConfigSpecOperationEdit, nic))
	}
	for _, d := range final {
		ctl, ok := d.(types.BaseVirtualController)
		if !ok {
			continue
		}
		ctlr := ctl.GetVirtualController()
		var children []int32
		for _, c := range final {
			if c.GetVirtualDevice().ControllerKey == ctlr.Key {
				children = append(children, c.GetVirtualDevice().Key)
			}
		}
		sort.Slice(children, func(i, j int) bool { return children[i] < children[j] })
		label := ""
		if ctlr.DeviceInfo != nil {
			label = ctlr.DeviceInfo.GetDescription().Label
		}
		if _, isSCSI := d.(types.BaseVirtualSCSIController); isSCSI {
			label = fmt.Sprintf("SCSI controller %d", ctlr.BusNumber)
		}
		if reflect.DeepEqual(children, ctlr.Device) && (ctlr.DeviceInfo == nil || label == ctlr.DeviceInfo.GetDescription().Label) {
			continue
		}
		edited := shallowCopy(d).(types.BaseVirtualDevice)
		ec := edited.(types.BaseVirtualController).GetVirtualController()
		ec.Device = children
		ec.DeviceInfo = &types.Description{Label: label}
		changes = append(changes, change(types.VirtualDeviceConfigSpecOperationEdit, edited))
	}
	if len(changes) > 0 {
		if err := applyChanges(ctx, vm, changes...); err != nil {
			return fmt.Errorf("setting up the CD-ROM, NICs and controllers: %w", err)
		}
	}
	return syncGuestNetMACs(vm.Reference())
}

// syncGuestNetMACs shows each NIC's current MAC in guest.net: the
// simulator records a NIC there when it is added and keeps that MAC when
// the NIC is edited.
func syncGuestNetMACs(ref types.ManagedObjectReference) error {
	obj, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("VM %s not found", ref.Value)
	}
	simulator.Map.WithLock(obj, func() {
		if obj.Config == nil || obj.Guest == nil {
			return
		}
		macs := map[int32]string{}
		for _, d := range obj.Config.Hardware.Device {
			if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
				c := nic.GetVirtualEthernetCard()
				macs[c.Key] = c.MacAddress
			}
		}
		stale := false
		for _, n := range obj.Guest.Net {
			if m, ok := macs[n.DeviceConfigId]; ok && m != n.MacAddress {
				stale = true
			}
		}
		if !stale {
			return
		}
		nets := make([]types.GuestNicInfo, len(obj.Guest.Net))
		copy(nets, obj.Guest.Net)
		for i := range nets {
			if m, ok := macs[nets[i].DeviceConfigId]; ok {
				nets[i].MacAddress = m
			}
		}
		simulator.Map.Update(obj, []types.PropertyChange{{Name: "guest.net", Val: nets}})
	})
	return nil
}

func scsiBus(devices object.VirtualDeviceList, controllerKey int32) (int32, bool) {
	if c, ok := devices.FindByKey(controllerKey).(types.BaseVirtualSCSIController); ok {
		return c.GetVirtualSCSIController().BusNumber, true
	}
	return 0, false
}

func rekeyDisks(ctx context.Context, vm *object.VirtualMachine, devices object.VirtualDeviceList) error {
	type diskAt struct {
		disk      *types.VirtualDisk
		bus, unit int32
	}
	var disks []diskAt
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		bus, ok := scsiBus(devices, disk.ControllerKey)
		if !ok || disk.UnitNumber == nil {
			continue // not on SCSI: leave alone
		}
		disks = append(disks, diskAt{disk, bus, *disk.UnitNumber})
		if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			capacity := disk.CapacityInBytes
			if capacity == 0 {
				capacity = disk.CapacityInKB * 1024
			}
			completeModelDisk(b.FileName, capacity)
		}
	}
	sort.Slice(disks, func(i, j int) bool {
		if disks[i].bus != disks[j].bus {
			return disks[i].bus < disks[j].bus
		}
		return disks[i].unit < disks[j].unit
	})
	needed := false
	for i, d := range disks {
		label := fmt.Sprintf("Hard disk %d", i+1)
		b, _ := d.disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if d.disk.Key != 2000+16*d.bus+d.unit || d.disk.DeviceInfo == nil ||
			d.disk.DeviceInfo.GetDescription().Label != label || (b != nil && b.Uuid == "") ||
			d.disk.CapacityInBytes == 0 {
			needed = true
		}
	}
	if !needed {
		return nil
	}
	var removes, adds []types.BaseVirtualDeviceConfigSpec
	for i, d := range disks {
		disk := shallowCopy(d.disk).(*types.VirtualDisk)
		disk.Key = 2000 + 16*d.bus + d.unit
		disk.DeviceInfo = &types.Description{Label: fmt.Sprintf("Hard disk %d", i+1)}
		if disk.CapacityInBytes == 0 {
			disk.CapacityInBytes = disk.CapacityInKB * 1024
		}
		if b, ok := d.disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			nb := shallowCopy(b).(*types.VirtualDiskFlatVer2BackingInfo)
			if nb.Uuid == "" {
				nb.Uuid = newDiskUUID()
			}
			if nb.Sharing == "" {
				nb.Sharing = string(types.VirtualDiskSharingSharingNone)
			}
			disk.Backing = nb
		}
		removes = append(removes, change(types.VirtualDeviceConfigSpecOperationRemove, d.disk))
		adds = append(adds, change(types.VirtualDeviceConfigSpecOperationAdd, disk))
	}
	if err := applyChanges(ctx, vm, append(removes, adds...)...); err != nil {
		return fmt.Errorf("re-keying disks: %w", err)
	}
	return nil
}
