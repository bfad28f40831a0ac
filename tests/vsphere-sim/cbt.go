package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Changed Block Tracking, snapshots that freeze the base disk, and guest
// writes: what a warm migration needs from a vSphere peer.
//
// Model (see README.md, "Snapshots, guest writes and CBT"):
//   - a disk is its flat file (the base) plus, while the VM has a snapshot,
//     an overlay NAME-flat.vmdk.ferry-delta holding the 64 KiB blocks the
//     guest wrote since the first snapshot, at their own offsets;
//   - removing the last snapshot copies the overlay into the base;
//   - every guest write gets the disk's next sequence number and goes into a
//     write log; change IDs are "EPOCH/SEQ"; a snapshot remembers each
//     disk's SEQ and EPOCH when it was taken.
//
// Locking, outermost first:
//   - cbt.vmLock(vm): all state of the VM's disks (seq, log, overlay,
//     epoch), the overlay files, and the snapshot SOAP calls we intercept
//     (held across the forwarded call, so that a write is either before or
//     after a snapshot);
//   - the simulator's object locks (Map.WithLock);
//   - cbt.baseLock(flat path): /folder reads hold it shared for the whole
//     request, writes into the base and consolidation exclusively;
//   - cbt.mu: the maps below only (leaf).

const (
	cbtBlock            = 64 << 10
	defaultCBTWindow    = 64 << 20
	snapshotFaultReason = "injected fault: snapshot creation failed"
	queryFaultReason    = "injected fault: QueryChangedDiskAreas failed"
)

type cbtWrite struct {
	seq         int64
	first, last int64 // block numbers, inclusive
}

type cbtDisk struct {
	vm       string // VM moref value
	key      int32
	flat     string // base file
	capacity int64
	epoch    string
	seq      int64
	log      []cbtWrite
	overlay  map[int64]bool // blocks held by the delta file
}

func (d *cbtDisk) delta() string    { return d.flat + ".ferry-delta" }
func (d *cbtDisk) changeID() string { return fmt.Sprintf("%s/%d", d.epoch, d.seq) }

// cbtSnap is what a snapshot taken through /sdk remembers per disk key.
type cbtSnap struct {
	vm    string
	seq   map[int32]int64
	epoch map[int32]string
}

type cbt struct {
	window int64

	mu        sync.Mutex
	disks     map[string]*cbtDisk // "vm-57/2000"
	snaps     map[string]*cbtSnap // snapshot moref value
	vmLocks   map[string]*sync.Mutex
	baseLocks map[string]*sync.RWMutex // by cleaned local path
}

func newCBT(window int64) *cbt {
	if window <= 0 {
		window = defaultCBTWindow
	}
	return &cbt{
		window:    window,
		disks:     map[string]*cbtDisk{},
		snaps:     map[string]*cbtSnap{},
		vmLocks:   map[string]*sync.Mutex{},
		baseLocks: map[string]*sync.RWMutex{},
	}
}

func (c *cbt) vmLock(vm string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.vmLocks[vm]
	if l == nil {
		l = &sync.Mutex{}
		c.vmLocks[vm] = l
	}
	return l
}

func (c *cbt) baseLock(local string) *sync.RWMutex {
	local = filepath.Clean(local)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.baseLocks[local]
	if l == nil {
		l = &sync.RWMutex{}
		c.baseLocks[local] = l
	}
	return l
}

func newEpoch() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	h := make([]string, 16)
	for i, x := range b {
		h[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(h[:8], " ") + "-" + strings.Join(h[8:], " ")
}

func parseChangeID(id string) (epoch string, seq int64, ok bool) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || seq < 0 {
		return "", 0, false
	}
	return id[:i], seq, true
}

// ---- the simulator's view of a VM ---------------------------------------

type vmDisk struct {
	key      int32
	file     string // "[ds] dir/NAME.vmdk"
	capacity int64
}

type vmSnapshot struct {
	ref               types.ManagedObjectReference
	name, description string
}

type vmView struct {
	ref        types.ManagedObjectReference
	obj        *simulator.VirtualMachine
	name       string
	powerState string
	cbt        bool
	disks      []vmDisk
	snapshots  []vmSnapshot // pre-order
	current    *types.ManagedObjectReference
}

func (v *vmView) disk(key int32) (vmDisk, bool) {
	for _, d := range v.disks {
		if d.key == key {
			return d, true
		}
	}
	return vmDisk{}, false
}

func (v *vmView) hasSnapshot(ref types.ManagedObjectReference) bool {
	for _, s := range v.snapshots {
		if s.ref == ref {
			return true
		}
	}
	return false
}

func flattenSnapshots(list []types.VirtualMachineSnapshotTree, out *[]vmSnapshot) {
	for _, t := range list {
		*out = append(*out, vmSnapshot{t.Snapshot, t.Name, t.Description})
		flattenSnapshots(t.ChildSnapshotList, out)
	}
}

// inspectVM reads what we need of a VM under the simulator's lock.
func inspectVM(ref types.ManagedObjectReference) *vmView {
	obj, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	v := &vmView{ref: ref, obj: obj}
	simulator.Map.WithLock(obj, func() {
		v.name = obj.Name
		v.powerState = string(obj.Runtime.PowerState)
		if obj.Config != nil {
			v.cbt = obj.Config.ChangeTrackingEnabled != nil && *obj.Config.ChangeTrackingEnabled
			for _, dev := range obj.Config.Hardware.Device {
				disk, ok := dev.(*types.VirtualDisk)
				if !ok {
					continue
				}
				b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
				if !ok {
					continue
				}
				capacity := disk.CapacityInBytes
				if capacity == 0 {
					capacity = disk.CapacityInKB * 1024
				}
				v.disks = append(v.disks, vmDisk{disk.Key, b.FileName, capacity})
			}
		}
		if obj.Snapshot != nil {
			flattenSnapshots(obj.Snapshot.RootSnapshotList, &v.snapshots)
			if obj.Snapshot.CurrentSnapshot != nil {
				cur := *obj.Snapshot.CurrentSnapshot
				v.current = &cur
			}
		}
	})
	return v
}

// VM morefs by name, as last seen; an entry is checked against the VM's
// current name before use, and a miss walks the inventory (a walk per
// request is slow with thousands of VMs).
var vmByName struct {
	sync.Mutex
	refs map[string]types.ManagedObjectReference
}

func findVMByName(name string) (types.ManagedObjectReference, bool) {
	vmByName.Lock()
	ref, cached := vmByName.refs[name]
	vmByName.Unlock()
	if cached {
		if vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); ok {
			match := false
			simulator.Map.WithLock(vm, func() { match = vm.Name == name })
			if match {
				return ref, true
			}
		}
	}
	refs := map[string]types.ManagedObjectReference{}
	found := false
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var n string
		simulator.Map.WithLock(vm, func() { n = vm.Name })
		refs[n] = vm.Self
		if n == name {
			ref, found = vm.Self, true
		}
	}
	vmByName.Lock()
	vmByName.refs = refs
	vmByName.Unlock()
	return ref, found
}

// disk returns the tracking state of one of v's disks, creating it (with a
// fresh epoch) on first use. Callers hold vmLock(v).
func (c *cbt) disk(v *vmView, vd vmDisk) (*cbtDisk, error) {
	id := v.ref.Value + "/" + strconv.Itoa(int(vd.key))
	c.mu.Lock()
	d := c.disks[id]
	c.mu.Unlock()
	if d != nil {
		d.capacity = vd.capacity
		return d, nil
	}
	local, ok := dsLocalPath(vd.file)
	if !ok || !strings.HasSuffix(local, ".vmdk") {
		return nil, fmt.Errorf("disk %d of %s: cannot map %q to a local file", vd.key, v.name, vd.file)
	}
	d = &cbtDisk{
		vm:       v.ref.Value,
		key:      vd.key,
		flat:     filepath.Clean(flatName(local)),
		capacity: vd.capacity,
		epoch:    newEpoch(),
		overlay:  map[int64]bool{},
	}
	c.mu.Lock()
	c.disks[id] = d
	c.mu.Unlock()
	return d, nil
}

// allDisks registers and returns all of v's disks, by key. Callers hold
// vmLock(v).
func (c *cbt) allDisks(v *vmView) map[int32]*cbtDisk {
	out := map[int32]*cbtDisk{}
	for _, vd := range v.disks {
		if d, err := c.disk(v, vd); err == nil {
			out[vd.key] = d
		}
	}
	return out
}

// setChangeIDs gives the disks of obj (a VM or a snapshot) the change IDs in
// ids, on copies of the disks and their backings: the simulator shares
// device objects between a VM and its snapshots.
func setChangeIDs(obj interface{}, ids map[int32]string) {
	var ref interface {
		Reference() types.ManagedObjectReference
	}
	var devices func() []types.BaseVirtualDevice
	switch o := obj.(type) {
	case *simulator.VirtualMachine:
		ref = o
		devices = func() []types.BaseVirtualDevice {
			if o.Config == nil {
				return nil
			}
			return o.Config.Hardware.Device
		}
	case *simulator.VirtualMachineSnapshot:
		ref = o
		devices = func() []types.BaseVirtualDevice { return o.Config.Hardware.Device }
	default:
		return
	}
	simulator.Map.WithLock(ref, func() {
		old := devices()
		if old == nil {
			return
		}
		devs := make([]types.BaseVirtualDevice, len(old))
		changed := false
		for i, dev := range old {
			devs[i] = dev
			disk, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			id, want := ids[disk.Key]
			if !ok || !want || b.ChangeId == id {
				continue
			}
			nd := *disk
			nb := *b
			nb.ChangeId = id
			nd.Backing = &nb
			devs[i] = &nd
			changed = true
		}
		if changed {
			simulator.Map.Update(ref, []types.PropertyChange{
				{Name: "config.hardware.device", Val: devs},
			})
		}
	})
}

// publishVMChangeIDs shows the disks' current change IDs in the VM's own
// device list (CBT enabled only). Callers hold vmLock(v).
func (c *cbt) publishVMChangeIDs(v *vmView) {
	if !v.cbt {
		return
	}
	ids := map[int32]string{}
	for key, d := range c.allDisks(v) {
		ids[key] = d.changeID()
	}
	setChangeIDs(v.obj, ids)
}

// ---- disk data -------------------------------------------------------------

// readFull reads len(p) bytes at off; what lies beyond the end of the file
// reads as zeros.
func readFull(f *os.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	for i := n; i < len(p); i++ {
		p[i] = 0
	}
	return err
}

func (d *cbtDisk) blockRange(b int64) (int64, int64) {
	start := b * cbtBlock
	end := start + cbtBlock
	if end > d.capacity {
		end = d.capacity
	}
	return start, end
}

// writeOverlay puts a guest write into the delta file, first copying the
// base into blocks it only partly covers. Callers hold vmLock.
func (c *cbt) writeOverlay(d *cbtDisk, off int64, data []byte) error {
	delta, err := os.OpenFile(d.delta(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer delta.Close()
	end := off + int64(len(data))
	first, last := off/cbtBlock, (end-1)/cbtBlock
	var base *os.File
	buf := make([]byte, cbtBlock)
	for b := first; b <= last; b++ {
		bs, be := d.blockRange(b)
		if d.overlay[b] || (off <= bs && end >= be) {
			continue
		}
		if base == nil {
			if base, err = os.Open(d.flat); err != nil {
				return err
			}
			defer base.Close()
		}
		// The base is frozen while the VM has a snapshot: no lock needed.
		if err := readFull(base, buf[:be-bs], bs); err != nil {
			return err
		}
		if _, err := delta.WriteAt(buf[:be-bs], bs); err != nil {
			return err
		}
	}
	if _, err := delta.WriteAt(data, off); err != nil {
		return err
	}
	for b := first; b <= last; b++ {
		d.overlay[b] = true
	}
	return nil
}

func (c *cbt) writeBase(d *cbtDisk, off int64, data []byte) error {
	l := c.baseLock(d.flat)
	l.Lock()
	defer l.Unlock()
	f, err := os.OpenFile(d.flat, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// consolidate copies the overlay into the base and deletes the delta file.
// Callers hold vmLock.
func (c *cbt) consolidate(d *cbtDisk) error {
	if len(d.overlay) == 0 {
		if err := os.Remove(d.delta()); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	blocks := make([]int64, 0, len(d.overlay))
	for b := range d.overlay {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })

	l := c.baseLock(d.flat)
	l.Lock()
	defer l.Unlock()
	delta, err := os.Open(d.delta())
	if err != nil {
		return err
	}
	defer delta.Close()
	base, err := os.OpenFile(d.flat, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	buf := make([]byte, cbtBlock)
	for _, b := range blocks {
		bs, be := d.blockRange(b)
		if err := readFull(delta, buf[:be-bs], bs); err != nil {
			base.Close()
			return err
		}
		if _, err := base.WriteAt(buf[:be-bs], bs); err != nil {
			base.Close()
			return err
		}
	}
	if err := base.Close(); err != nil {
		return err
	}
	d.overlay = map[int64]bool{}
	return os.Remove(d.delta())
}

// settle brings the model in line with the VM's snapshots: without any,
// overlays are consolidated; records of snapshots that are gone are
// dropped. Callers hold vmLock(v).
func (c *cbt) settle(v *vmView) error {
	c.mu.Lock()
	for id, s := range c.snaps {
		if s.vm == v.ref.Value && !v.hasSnapshot(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: id}) {
			delete(c.snaps, id)
		}
	}
	c.mu.Unlock()
	if len(v.snapshots) > 0 {
		return nil
	}
	var firstErr error
	for _, d := range c.allDisks(v) {
		if len(d.overlay) == 0 {
			if _, err := os.Stat(d.delta()); err != nil {
				continue
			}
		}
		n := len(d.overlay)
		if err := c.consolidate(d); err != nil {
			log.Printf("consolidating disk %d of %s: %v", d.key, v.name, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if n > 0 {
			log.Printf("consolidated %d blocks into disk %d of %s", n, d.key, v.name)
		}
	}
	return firstErr
}

// allocated lists the allocated areas of the base in [start, end) as block
// ranges [first, last].
func allocated(path string, start, end int64) ([][2]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const seekData, seekHole = 3, 4
	var out [][2]int64
	for off := start; off < end; {
		data, err := f.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break
			}
			// No SEEK_DATA here: everything counts as allocated.
			return [][2]int64{{start / cbtBlock, (end - 1) / cbtBlock}}, nil
		}
		if data >= end {
			break
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil || hole > end {
			hole = end
		}
		if hole <= data {
			break
		}
		out = append(out, [2]int64{data / cbtBlock, (hole - 1) / cbtBlock})
		off = hole
	}
	return out, nil
}

// ---- /ferry-sim endpoints --------------------------------------------------

func jsonError(w http.ResponseWriter, status int, format string, args ...interface{}) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// diskParams resolves ?vm=NAME&key=K.
func diskParams(r *http.Request) (types.ManagedObjectReference, int32, error) {
	q := r.URL.Query()
	name := q.Get("vm")
	ref, ok := findVMByName(name)
	if !ok {
		return ref, 0, fmt.Errorf("no VM named %q", name)
	}
	key, err := strconv.ParseInt(q.Get("key"), 10, 32)
	if err != nil {
		return ref, 0, fmt.Errorf("bad disk key %q", q.Get("key"))
	}
	return ref, int32(key), nil
}

// POST /ferry-sim/disk-write?vm=NAME&key=K&offset=N, body = the bytes.
func (f *frontend) serveDiskWrite(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	ref, key, err := diskParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, "%v", err)
		return
	}
	off, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || off < 0 {
		jsonError(w, http.StatusBadRequest, "bad offset %q", r.URL.Query().Get("offset"))
		return
	}
	data, err := ioutil.ReadAll(r.Body)
	if err != nil {
		jsonError(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if len(data) == 0 {
		jsonError(w, http.StatusBadRequest, "empty body: nothing to write")
		return
	}

	c := f.cbt
	unlock, v, d, ok := c.lockedDisk(w, ref, key)
	if !ok {
		return
	}
	defer unlock()
	if off+int64(len(data)) > d.capacity {
		jsonError(w, http.StatusBadRequest, "write of %d bytes at %d ends beyond the disk's capacity %d", len(data), off, d.capacity)
		return
	}
	if err := c.settle(v); err != nil {
		jsonError(w, http.StatusInternalServerError, "consolidating: %v", err)
		return
	}
	toOverlay := len(v.snapshots) > 0
	if toOverlay {
		err = c.writeOverlay(d, off, data)
	} else {
		err = c.writeBase(d, off, data)
	}
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "writing: %v", err)
		return
	}
	d.seq++
	d.log = append(d.log, cbtWrite{d.seq, off / cbtBlock, (off + int64(len(data)) - 1) / cbtBlock})
	c.publishVMChangeIDs(v)
	f.mu.Lock()
	f.diskWrites++
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"seq": d.seq, "change_id": d.changeID(), "overlay": toOverlay,
	})
}

// lockedVM takes the VM's lock and inspects it. On failure it has answered
// the request (with `status`) and released the lock.
func (c *cbt) lockedVM(w http.ResponseWriter, ref types.ManagedObjectReference, status int) (func(), *vmView, bool) {
	l := c.vmLock(ref.Value)
	l.Lock()
	v := inspectVM(ref)
	if v == nil {
		l.Unlock()
		jsonError(w, status, "VM %s is gone", ref.Value)
		return nil, nil, false
	}
	return l.Unlock, v, true
}

// lockedDisk takes the VM's lock and finds the disk's CBT state. On failure it
// has answered the request (400) and released the lock.
func (c *cbt) lockedDisk(w http.ResponseWriter, ref types.ManagedObjectReference, key int32) (func(), *vmView, *cbtDisk, bool) {
	unlock, v, ok := c.lockedVM(w, ref, http.StatusBadRequest)
	if !ok {
		return nil, nil, nil, false
	}
	vd, ok := v.disk(key)
	if !ok {
		unlock()
		jsonError(w, http.StatusBadRequest, "VM %s has no disk with key %d", v.name, key)
		return nil, nil, nil, false
	}
	d, err := c.disk(v, vd)
	if err != nil {
		unlock()
		jsonError(w, http.StatusBadRequest, "%v", err)
		return nil, nil, nil, false
	}
	return unlock, v, d, true
}

// GET /ferry-sim/disk-read?vm=NAME&key=K: the guest's view of the disk.
func (f *frontend) serveDiskRead(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	ref, key, err := diskParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, "%v", err)
		return
	}
	c := f.cbt
	unlock, _, d, ok := c.lockedDisk(w, ref, key)
	if !ok {
		return
	}
	defer unlock()
	bl := c.baseLock(d.flat)
	bl.RLock()
	defer bl.RUnlock()
	base, err := os.Open(d.flat)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer base.Close()
	var delta *os.File
	if len(d.overlay) > 0 {
		if delta, err = os.Open(d.delta()); err != nil {
			jsonError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		defer delta.Close()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(d.capacity, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	const chunk = 16 * cbtBlock
	buf := make([]byte, chunk)
	for off := int64(0); off < d.capacity; off += chunk {
		n := d.capacity - off
		if n > chunk {
			n = chunk
		}
		p := buf[:n]
		if err := readFull(base, p, off); err != nil {
			panic(http.ErrAbortHandler)
		}
		for b := off / cbtBlock; b*cbtBlock < off+n; b++ {
			if !d.overlay[b] {
				continue
			}
			bs, be := d.blockRange(b)
			if err := readFull(delta, p[bs-off:be-off], bs); err != nil {
				panic(http.ErrAbortHandler)
			}
		}
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

type cbtResetRequest struct {
	VM string `json:"vm"`
}

type vmDiskReply struct {
	Key           int32  `json:"key"`
	ChangeID      string `json:"change_id"`
	OverlayBlocks int    `json:"overlay_blocks"`
}

type vmSnapshotReply struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type vmReply struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	PowerState string            `json:"power_state"`
	CBT        bool              `json:"cbt"`
	Snapshots  []vmSnapshotReply `json:"snapshots"`
	Disks      []vmDiskReply     `json:"disks"`
}

// vmReply describes v; callers hold vmLock(v).
func (c *cbt) vmReply(v *vmView) vmReply {
	rep := vmReply{
		Name: v.name, ID: v.ref.Value, PowerState: v.powerState, CBT: v.cbt,
		Snapshots: []vmSnapshotReply{}, Disks: []vmDiskReply{},
	}
	for _, s := range v.snapshots {
		rep.Snapshots = append(rep.Snapshots, vmSnapshotReply{s.ref.Value, s.name, s.description})
	}
	disks := c.allDisks(v)
	for _, vd := range v.disks {
		if d := disks[vd.key]; d != nil {
			rep.Disks = append(rep.Disks, vmDiskReply{vd.key, d.changeID(), len(d.overlay)})
		}
	}
	return rep
}

// POST /ferry-sim/cbt-reset {"vm": NAME}: new epochs for all the VM's disks.
func (f *frontend) serveCBTReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var req cbtResetRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.VM == "" {
		jsonError(w, http.StatusBadRequest, "expected {\"vm\": NAME}")
		return
	}
	ref, ok := findVMByName(req.VM)
	if !ok {
		jsonError(w, http.StatusBadRequest, "no VM named %q", req.VM)
		return
	}
	c := f.cbt
	unlock, v, ok := c.lockedVM(w, ref, http.StatusBadRequest)
	if !ok {
		return
	}
	defer unlock()
	for _, d := range c.allDisks(v) {
		d.epoch = newEpoch()
	}
	c.publishVMChangeIDs(v)
	writeJSON(w, http.StatusOK, c.vmReply(v))
}

// GET /ferry-sim/vm?name=NAME
func (f *frontend) serveVM(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Query().Get("name")
	ref, ok := findVMByName(name)
	if !ok {
		jsonError(w, http.StatusNotFound, "no VM named %q", name)
		return
	}
	c := f.cbt
	unlock, v, ok := c.lockedVM(w, ref, http.StatusNotFound)
	if !ok {
		return
	}
	defer unlock()
	writeJSON(w, http.StatusOK, c.vmReply(v))
}

// lockFolderRead takes the base lock of the file a /folder request reads,
// shared; the returned function releases it.
func (c *cbt) lockFolderRead(r *http.Request) func() {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return func() {}
	}
	var ds *simulator.Datastore
	if name := r.URL.Query().Get("dsName"); name != "" {
		ds, _ = datastoreByName(name)
	} else if all := allDatastores(); len(all) == 1 {
		ds = all[0]
	}
	if ds == nil {
		return func() {}
	}
	rel := strings.TrimPrefix(r.URL.Path, "/folder")
	l := c.baseLock(filepath.Join(ds.Info.GetDatastoreInfo().Url, rel))
	l.RLock()
	return l.RUnlock
}

// ---- SOAP ------------------------------------------------------------------

var interceptRE = regexp.MustCompile(`<([A-Za-z0-9_]+:)?(CreateSnapshot_Task|RemoveSnapshot_Task|RemoveAllSnapshots_Task|QueryChangedDiskAreas|RetrievePropertiesEx|ContinueRetrievePropertiesEx|CancelRetrievePropertiesEx)[\s>/]`)

// interceptedCall decodes body if it is one of the calls we act on.
func interceptedCall(body []byte) *simulator.Method {
	if !interceptRE.Match(body) {
		return nil
	}
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return nil
	}
	switch m.Name {
	case "CreateSnapshot_Task", "RemoveSnapshot_Task", "RemoveAllSnapshots_Task", "QueryChangedDiskAreas",
		"RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx":
		return m
	}
	return nil
}

// Encoding as the simulator does it (simulator.go: soapEnvelope, soapFault,
// faultDetail, response), whose types are not exported.
type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type faultDetail struct {
	Fault types.AnyType
}

func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

type faultBody struct {
	Fault *soapFault
}

// resultBody encodes a methods.*Body's Res as <TypeName xmlns="urn:vim25">.
type resultBody struct {
	res interface{}
}

func (r *resultBody) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	el := xml.StartElement{Name: xml.Name{Space: "urn:vim25", Local: reflect.TypeOf(r.res).Elem().Name()}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(r.res, el); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func writeSOAP(w http.ResponseWriter, status int, body interface{}) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding a SOAP response: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

func writeSOAPFault(w http.ResponseWriter, msg string, fault types.AnyType) {
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{fault}
	writeSOAP(w, http.StatusInternalServerError, &faultBody{f})
}

func writeSOAPResult(w http.ResponseWriter, res interface{}) {
	writeSOAP(w, http.StatusOK, &resultBody{res})
}

// invalidArgument is vSphere's fault for a bad parameter; the details go to
// our log only (vSphere's faultstring names just the parameter).
func invalidArgument(prop, detail string) *soap.Fault {
	msg := "A specified parameter was not correct: " + prop
	if detail != "" {
		log.Printf("QueryChangedDiskAreas: %s: %s", msg, detail)
	}
	return simulator.Fault(msg, &types.InvalidArgument{InvalidProperty: prop})
}

// recorder holds a response back until we are done with the call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{header: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) writeTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// snapshotCallVM is the VM a snapshot call affects.
func snapshotCallVM(m *simulator.Method) (types.ManagedObjectReference, bool) {
	switch m.Name {
	case "CreateSnapshot_Task", "RemoveAllSnapshots_Task":
		_, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachine)
		return m.This, ok
	case "RemoveSnapshot_Task":
		if s, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachineSnapshot); ok {
			return s.Vm, true
		}
	}
	return types.ManagedObjectReference{}, false
}

// serveSnapshotCall forwards a snapshot call with the VM locked and brings
// the disks in line afterwards, before the client sees the answer.
func (f *frontend) serveSnapshotCall(w http.ResponseWriter, r *http.Request, m *simulator.Method, vmRef types.ManagedObjectReference) *headerSpy {
	c := f.cbt
	if m.Name == "CreateSnapshot_Task" {
		f.mu.Lock()
		inject := f.snapshotCreateFail > 0
		if inject {
			f.snapshotCreateFail--
			f.faultFiredAll++
		}
		f.mu.Unlock()
		if inject {
			failSnapshotTask(w, vmRef)
			return nil
		}
	}

	l := c.vmLock(vmRef.Value)
	l.Lock()
	defer l.Unlock()
	before := 0
	if v := inspectVM(vmRef); v != nil {
		before = len(v.snapshots)
		if m.Name == "CreateSnapshot_Task" {
			_ = c.settle(v) // a leftover overlay is not part of the new snapshot's base
		}
	}
	rec := newRecorder()
	spy := &headerSpy{ResponseWriter: rec}
	f.next.ServeHTTP(spy, r)

	if v := inspectVM(vmRef); v != nil && spy.status == http.StatusOK {
		created, removed := 0, 0
		switch m.Name {
		case "CreateSnapshot_Task":
			if c.recordSnapshot(v) {
				created = 1
			}
		default:
			if removed = before - len(v.snapshots); removed < 0 {
				removed = 0
			}
			if err := c.settle(v); err != nil {
				log.Printf("%s on %s: %v", m.Name, v.name, err)
			}
		}
		c.publishVMChangeIDs(v)
		f.mu.Lock()
		f.snapshotsCreated += int64(created)
		f.snapshotsRemoved += int64(removed)
		f.mu.Unlock()
	}
	rec.writeTo(w)
	return spy
}

// recordSnapshot notes the VM's current snapshot, if new: each disk's
// sequence number and epoch, and the change IDs in the snapshot's devices.
// Callers hold vmLock(v).
func (c *cbt) recordSnapshot(v *vmView) bool {
	if v.current == nil {
		return false
	}
	c.mu.Lock()
	_, known := c.snaps[v.current.Value]
	c.mu.Unlock()
	if known {
		return false
	}
	s := &cbtSnap{vm: v.ref.Value, seq: map[int32]int64{}, epoch: map[int32]string{}}
	ids := map[int32]string{}
	for key, d := range c.allDisks(v) {
		s.seq[key] = d.seq
		s.epoch[key] = d.epoch
		ids[key] = d.changeID()
	}
	c.mu.Lock()
	c.snaps[v.current.Value] = s
	c.mu.Unlock()
	if snap, ok := simulator.Map.Get(*v.current).(*simulator.VirtualMachineSnapshot); ok && v.cbt {
		setChangeIDs(snap, ids)
	}
	return true
}

// failSnapshotTask answers CreateSnapshot_Task with a task that failed.
func failSnapshotTask(w http.ResponseWriter, vmRef types.ManagedObjectReference) {
	fault := &types.SystemError{Reason: snapshotFaultReason}
	task := simulator.CreateTask(vmRef, "createSnapshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	ref := task.Run()
	simulator.Map.WithLock(task, func() {
		simulator.Map.Update(task, []types.PropertyChange{{
			Name: "info.error",
			Val:  &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: snapshotFaultReason},
		}})
	})
	log.Printf("CreateSnapshot_Task on %s: %s (%s)", vmRef.Value, snapshotFaultReason, ref.Value)
	writeSOAPResult(w, &types.CreateSnapshot_TaskResponse{Returnval: ref})
}

// serveQueryChangedDiskAreas answers QueryChangedDiskAreas, which the
// simulator does not implement.
func (f *frontend) serveQueryChangedDiskAreas(w http.ResponseWriter, r *http.Request, m *simulator.Method) {
	req := m.Body.(*types.QueryChangedDiskAreas)
	f.mu.Lock()
	f.changedAreaQueries++
	known := false
	if ck, err := r.Cookie(soap.SessionCookieName); err == nil {
		known = f.sessions[ck.Value]
	}
	inject := known && f.queryChangedFail > 0
	if inject {
		f.queryChangedFail--
		f.faultFiredAll++
	}
	f.mu.Unlock()
	if !known {
		writeSOAPFault(w, "The session is not authenticated.", &types.NotAuthenticated{
			NoPermission: types.NoPermission{Object: req.This, PrivilegeId: "System.View"},
		})
		return
	}
	if inject {
		writeSOAPFault(w, queryFaultReason, &types.SystemError{Reason: queryFaultReason})
		return
	}
	info, fault := f.cbt.query(req)
	if fault != nil {
		writeSOAPFault(w, fault.String, fault.Detail.Fault)
		return
	}
	writeSOAPResult(w, &types.QueryChangedDiskAreasResponse{Returnval: *info})
}

func (c *cbt) query(req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, *soap.Fault) {
	if _, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachine); !ok {
		return nil, simulator.Fault(fmt.Sprintf("managed object not found: %s", req.This),
			&types.ManagedObjectNotFound{Obj: req.This})
	}
	l := c.vmLock(req.This.Value)
	l.Lock()
	defer l.Unlock()
	v := inspectVM(req.This)
	if v == nil {
		return nil, simulator.Fault(fmt.Sprintf("managed object not found: %s", req.This),
			&types.ManagedObjectNotFound{Obj: req.This})
	}
	if !v.cbt {
		return nil, invalidArgument("_this", "changed block tracking is not enabled on "+v.name)
	}
	vd, ok := v.disk(req.DeviceKey)
	if !ok {
		return nil, invalidArgument("deviceKey", fmt.Sprintf("%s has no disk with key %d", v.name, req.DeviceKey))
	}
	d, err := c.disk(v, vd)
	if err != nil {
		return nil, invalidArgument("deviceKey", err.Error())
	}

	// The point in time the answer is about: a snapshot, or now if the VM
	// is powered off.
	var snapSeq int64
	var snapEpoch string
	if req.Snapshot != nil {
		c.mu.Lock()
		s := c.snaps[req.Snapshot.Value]
		c.mu.Unlock()
		if s == nil || s.vm != v.ref.Value || !v.hasSnapshot(*req.Snapshot) {
			return nil, invalidArgument("snapshot", fmt.Sprintf("%s is not a snapshot of %s", req.Snapshot.Value, v.name))
		}
		seq, ok := s.seq[req.DeviceKey]
		if !ok {
			return nil, invalidArgument("deviceKey", fmt.Sprintf("snapshot %s has no disk with key %d", req.Snapshot.Value, req.DeviceKey))
		}
		snapSeq, snapEpoch = seq, s.epoch[req.DeviceKey]
	} else {
		if v.powerState != string(types.VirtualMachinePowerStatePoweredOff) {
			return nil, invalidArgument("snapshot", "a snapshot is required unless the VM is powered off")
		}
		snapSeq, snapEpoch = d.seq, d.epoch
	}
	if req.StartOffset < 0 || req.StartOffset >= d.capacity {
		return nil, invalidArgument("startOffset", fmt.Sprintf("%d is not below the capacity %d", req.StartOffset, d.capacity))
	}
	start := req.StartOffset
	length := d.capacity - start
	if length > c.window {
		length = c.window
	}
	end := start + length
	firstBlock, lastBlock := start/cbtBlock, (end-1)/cbtBlock

	var ranges [][2]int64
	inWindow := func(w cbtWrite) bool { return w.last >= firstBlock && w.first <= lastBlock }
	if req.ChangeId == "*" {
		bl := c.baseLock(d.flat)
		bl.RLock()
		ranges, err = allocated(d.flat, start, end)
		bl.RUnlock()
		if err != nil {
			return nil, simulator.Fault(err.Error(), &types.FileFault{File: d.flat})
		}
		// Written after the base was frozen (in the overlay), up to the snapshot.
		for _, w := range d.log {
			if w.seq <= snapSeq && inWindow(w) {
				ranges = append(ranges, [2]int64{w.first, w.last})
			}
		}
	} else {
		epoch, seq, ok := parseChangeID(req.ChangeId)
		switch {
		case !ok:
			return nil, invalidArgument("changeId", fmt.Sprintf("%q is not EPOCH/SEQ", req.ChangeId))
		case epoch != d.epoch || snapEpoch != d.epoch:
			return nil, invalidArgument("changeId", fmt.Sprintf("%q: disk %d of %s is in epoch %q (snapshot: %q)",
				req.ChangeId, d.key, v.name, d.epoch, snapEpoch))
		case seq > snapSeq:
			return nil, invalidArgument("changeId", fmt.Sprintf("%q is newer than the snapshot (%d)", req.ChangeId, snapSeq))
		}
		for _, w := range d.log {
			if w.seq > seq && w.seq <= snapSeq && inWindow(w) {
				ranges = append(ranges, [2]int64{w.first, w.last})
			}
		}
	}

	info := &types.DiskChangeInfo{StartOffset: start, Length: length, ChangedArea: []types.DiskChangeExtent{}}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	var merged [][2]int64
	for _, r := range ranges {
		if n := len(merged); n > 0 && r[0] <= merged[n-1][1]+1 {
			if r[1] > merged[n-1][1] {
				merged[n-1][1] = r[1]
			}
			continue
		}
		merged = append(merged, r)
	}
	for _, r := range merged {
		s, e := r[0]*cbtBlock, (r[1]+1)*cbtBlock
		if s < start {
			s = start
		}
		if e > end {
			e = end
		}
		if e > s {
			info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: s, Length: e - s})
		}
	}
	return info, nil
}

// init registers the disks of all VMs and shows the change IDs of those
// with CBT in their device lists.
func (c *cbt) init() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		ref := e.Reference()
		l := c.vmLock(ref.Value)
		l.Lock()
		if v := inspectVM(ref); v != nil {
			c.publishVMChangeIDs(v)
			c.allDisks(v)
		}
		l.Unlock()
	}
}
