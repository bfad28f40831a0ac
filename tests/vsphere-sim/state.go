package main

import (
	"context"
	"encoding/json"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// State is what the state file holds once the server is ready.
type State struct {
	URL         string          `json:"url"`
	Thumbprint  string          `json:"thumbprint"`
	CertPEM     string          `json:"cert_pem"`
	Username    string          `json:"username"`
	Password    string          `json:"password"`
	Pid         int             `json:"pid"`
	Datacenters []NamedObject   `json:"datacenters"`
	Hosts       []NamedObject   `json:"hosts"`
	Datastores  []DatastoreInfo `json:"datastores"`
	Networks    []NetworkInfo   `json:"networks"`
	VMs         []VMInfo        `json:"vms"`
}

type NamedObject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type DatastoreInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Path string `json:"path"` // local directory backing the datastore
}

type NetworkInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // Network | DistributedVirtualPortgroup | OpaqueNetwork
}

type VMInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	UUID       string     `json:"uuid"`
	Host       string     `json:"host"`
	PowerState string     `json:"power_state"`
	Firmware   string     `json:"firmware"`
	CBT        bool       `json:"cbt"`
	MemoryMB   int32      `json:"memory_mb"`
	CPUs       int32      `json:"cpus"`
	VMX        string     `json:"vmx"`
	Disks      []DiskInfo `json:"disks"`
	MACs       []string   `json:"macs"`
	ISO        string     `json:"iso,omitempty"`
}

type DiskInfo struct {
	Key      int32  `json:"key"`
	File     string `json:"file"`      // "[LocalDS_0] dir/NAME.vmdk"
	FlatPath string `json:"flat_path"` // local path of NAME-flat.vmdk
	Capacity int64  `json:"capacity"`  // bytes
	Sharing  string `json:"sharing"`
}

func entities(kind string) []mo.Entity {
	list := simulator.Map.All(kind)
	sort.Slice(list, func(i, j int) bool {
		return list[i].Entity().Name < list[j].Entity().Name
	})
	return list
}

func collectState(ctx context.Context, c *vim25.Client) (*State, error) {
	st := &State{
		Datacenters: []NamedObject{},
		Hosts:       []NamedObject{},
		Datastores:  []DatastoreInfo{},
		Networks:    []NetworkInfo{},
		VMs:         []VMInfo{},
	}
	for _, e := range entities("Datacenter") {
		st.Datacenters = append(st.Datacenters, NamedObject{e.Reference().Value, e.Entity().Name})
	}
	for _, e := range entities("HostSystem") {
		st.Hosts = append(st.Hosts, NamedObject{e.Reference().Value, e.Entity().Name})
	}
	for _, e := range entities("Datastore") {
		ds := e.(*simulator.Datastore)
		st.Datastores = append(st.Datastores, DatastoreInfo{ds.Self.Value, ds.Name, ds.Info.GetDatastoreInfo().Url})
	}
	for _, kind := range []string{"Network", "DistributedVirtualPortgroup", "OpaqueNetwork"} {
		for _, e := range entities(kind) {
			st.Networks = append(st.Networks, NetworkInfo{e.Reference().Value, e.Entity().Name, kind})
		}
	}

	vms, err := allVMs(ctx, c)
	if err != nil {
		return nil, err
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	for _, vm := range vms {
		info := VMInfo{
			ID:         vm.Self.Value,
			Name:       vm.Name,
			PowerState: string(vm.Runtime.PowerState),
			Disks:      []DiskInfo{},
			MACs:       []string{},
		}
		if vm.Runtime.Host != nil {
			info.Host = vm.Runtime.Host.Value
		}
		if vm.Config != nil {
			info.UUID = vm.Config.Uuid
			info.Firmware = vm.Config.Firmware
			info.CBT = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
			info.MemoryMB = vm.Config.Hardware.MemoryMB
			info.CPUs = vm.Config.Hardware.NumCPU
			info.VMX = vm.Config.Files.VmPathName
			devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
			for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
				disk := d.(*types.VirtualDisk)
				di := DiskInfo{Key: disk.Key, Capacity: disk.CapacityInBytes}
				if di.Capacity == 0 {
					di.Capacity = disk.CapacityInKB * 1024
				}
				if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					di.File = b.FileName
					di.Sharing = b.Sharing
					if local, ok := dsLocalPath(b.FileName); ok {
						di.FlatPath = flatName(local)
					}
				}
				info.Disks = append(info.Disks, di)
			}
			for _, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
				info.MACs = append(info.MACs, d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress)
			}
			for _, d := range devices.SelectByType((*types.VirtualCdrom)(nil)) {
				if b, ok := d.GetVirtualDevice().Backing.(*types.VirtualCdromIsoBackingInfo); ok && info.ISO == "" {
					info.ISO = b.FileName
				}
			}
		}
		st.VMs = append(st.VMs, info)
	}
	return st, nil
}

// writeStateFile writes st to file atomically (temporary file + rename).
func writeStateFile(file string, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(file)
	tmp, err := ioutil.TempFile(dir, ".vsphere-sim-state-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
