package main

import (
	"bytes"
	"encoding/json"
	"io/ioutil"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/vmware/govmomi/vim25/soap"
)

// frontend sits in front of the simulator's handlers:
//   - /sdk: records the session cookies handed out by Login (and forgets
//     them on Logout), counts logins;
//   - /folder: requires a known session cookie (401 otherwise), counts the
//     bytes served per remote address, applies the injected fault;
//   - snapshot calls and QueryChangedDiskAreas: see cbt.go;
//   - /ferry-sim/...: test controls, no auth.
type frontend struct {
	next http.Handler
	cbt  *cbt

	mu             sync.Mutex
	sessions       map[string]bool
	bytesByRemote  map[string]int64
	folderRequests int64
	folderDenied   int64
	logins         int64
	loginFailures  int64
	logouts        int64

	// Fault injection: once faultBudget more bytes have been served on
	// /folder, the transfer in progress is cut and /folder answers 500;
	// after faultCount firings (0: until cleared) the fault disarms itself.
	faultArmed    bool
	faultBudget   int64
	faultServed   int64
	faultCount    int64
	faultFired    int64
	faultFiredAll int64 // all injected faults, for /ferry-sim/stats

	// Injected SOAP faults: how many more calls fail.
	snapshotCreateFail int64
	queryChangedFail   int64

	snapshotsCreated   int64
	snapshotsRemoved   int64
	changedAreaQueries int64
	diskWrites         int64
}

func newFrontend(next http.Handler, cbtWindow int64) *frontend {
	return &frontend{
		next:          next,
		cbt:           newCBT(cbtWindow),
		sessions:      map[string]bool{},
		bytesByRemote: map[string]int64{},
	}
}

func (f *frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/ferry-sim/stats":
		f.serveStats(w, r)
	case p == "/ferry-sim/faults":
		f.serveFaults(w, r)
	case p == "/ferry-sim/disk-write":
		f.serveDiskWrite(w, r)
	case p == "/ferry-sim/disk-read":
		f.serveDiskRead(w, r)
	case p == "/ferry-sim/cbt-reset":
		f.serveCBTReset(w, r)
	case p == "/ferry-sim/vm":
		f.serveVM(w, r)
	case p == "/ferry-sim/revoke-sessions":
		f.serveRevokeSessions(w, r)
	case p == "/folder" || strings.HasPrefix(p, "/folder/"):
		f.serveFolder(w, r)
	case strings.HasPrefix(p, "/sdk"):
		f.serveSDK(w, r)
	default:
		f.next.ServeHTTP(w, r)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ---- /sdk ----------------------------------------------------------------

var (
	loginRE  = regexp.MustCompile(`<([A-Za-z0-9_]+:)?Login[\s>/]`)
	logoutRE = regexp.MustCompile(`<([A-Za-z0-9_]+:)?Logout[\s>/]`)
)

type headerSpy struct {
	http.ResponseWriter
	status  int
	cookies []string
}

func (h *headerSpy) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
		resp := http.Response{Header: h.Header()}
		for _, c := range resp.Cookies() {
			if c.Name == soap.SessionCookieName && c.Value != "" {
				h.cookies = append(h.cookies, c.Value)
			}
		}
	}
	h.ResponseWriter.WriteHeader(status)
}

func (h *headerSpy) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(p)
}

func (f *frontend) serveSDK(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		f.next.ServeHTTP(w, r)
		return
	}
	body, err := ioutil.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	isLogin := loginRE.Match(body)
	isLogout := logoutRE.Match(body)

	var spy *headerSpy
	if m := interceptedCall(body); m != nil {
		if m.Name == "QueryChangedDiskAreas" {
			f.serveQueryChangedDiskAreas(w, r, m)
			return
		}
		if f.servePaged(w, r, m) {
			return
		}
		if vm, ok := snapshotCallVM(m); ok && f.knownSession(r) {
			if spy = f.serveSnapshotCall(w, r, m, vm); spy == nil {
				return // injected fault
			}
		}
	}
	if spy == nil {
		spy = &headerSpy{ResponseWriter: w}
		f.next.ServeHTTP(spy, r)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	ok := spy.status == http.StatusOK
	for _, c := range spy.cookies {
		if ok {
			f.sessions[c] = true
		}
	}
	if isLogin {
		if ok && len(spy.cookies) > 0 {
			f.logins++
		} else {
			f.loginFailures++
		}
	}
	if isLogout && ok {
		if c, err := r.Cookie(soap.SessionCookieName); err == nil {
			delete(f.sessions, c.Value)
		}
		f.logouts++
	}
}

// POST: every session the frontend knows ends for datastore access, as if
// an administrator had terminated them: /folder answers 401 to their
// cookies. (The simulator's SOAP side still accepts them.)
func (f *frontend) serveRevokeSessions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	n := len(f.sessions)
	f.sessions = map[string]bool{}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (f *frontend) knownSession(r *http.Request) bool {
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[c.Value]
}

// ---- /folder -------------------------------------------------------------

type folderWriter struct {
	http.ResponseWriter
	f      *frontend
	remote string
}

func (fw *folderWriter) Write(p []byte) (int, error) {
	f := fw.f
	f.mu.Lock()
	cut := false
	if f.faultArmed {
		left := f.faultBudget - f.faultServed
		if left < 0 {
			left = 0
		}
		if int64(len(p)) > left {
			p = p[:left]
			cut = true
		}
	}
	f.mu.Unlock()

	n, err := fw.ResponseWriter.Write(p)

	f.mu.Lock()
	f.bytesByRemote[fw.remote] += int64(n)
	if f.faultArmed {
		f.faultServed += int64(n)
	}
	if cut {
		f.fireLocked()
	}
	f.mu.Unlock()

	if cut {
		// Headers are out already: deliver what we have, then drop the
		// connection so that the client sees a short body.
		if fl, ok := fw.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	return n, err
}

// fireLocked records one firing of the fault; f.mu must be held.
func (f *frontend) fireLocked() {
	f.faultFired++
	f.faultFiredAll++
	if f.faultCount > 0 && f.faultFired >= f.faultCount {
		f.faultArmed = false
	}
}

func (f *frontend) serveFolder(w http.ResponseWriter, r *http.Request) {
	remote := remoteIP(r)
	f.mu.Lock()
	known := false
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		known = f.sessions[c.Value]
	}
	if !known {
		f.folderDenied++
		f.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
		http.Error(w, "401 Unauthorized: a valid vmware_soap_session cookie is required", http.StatusUnauthorized)
		return
	}
	f.folderRequests++
	if f.faultArmed && f.faultServed >= f.faultBudget {
		f.fireLocked()
		f.mu.Unlock()
		http.Error(w, "500 injected fault (folder_fail_after_bytes)", http.StatusInternalServerError)
		return
	}
	f.mu.Unlock()

	// While the VM has a snapshot the base does not change; otherwise guest
	// writes wait for the transfer (and consolidation for both).
	defer f.cbt.lockFolderRead(r)()
	f.next.ServeHTTP(&folderWriter{ResponseWriter: w, f: f, remote: remote}, r)
}

// ---- /ferry-sim ----------------------------------------------------------

type statsReply struct {
	FolderBytesByRemote map[string]int64 `json:"folder_bytes_by_remote"`
	FolderBytes         int64            `json:"folder_bytes"`
	FolderRequests      int64            `json:"folder_requests"`
	FolderUnauthorized  int64            `json:"folder_unauthorized"`
	Logins              int64            `json:"logins"`
	LoginFailures       int64            `json:"login_failures"`
	Logouts             int64            `json:"logouts"`
	Sessions            int              `json:"sessions"`
	FaultsFired         int64            `json:"faults_fired"`
	SnapshotsCreated    int64            `json:"snapshots_created"`
	SnapshotsRemoved    int64            `json:"snapshots_removed"`
	ChangedAreaQueries  int64            `json:"changed_area_queries"`
	DiskWrites          int64            `json:"disk_writes"`
	PagesServed         int64            `json:"pages_served"` // paged RetrievePropertiesEx answers (paging.go)
}

// GET: counters. DELETE or POST: reset the counters (not the sessions).
func (f *frontend) serveStats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete, http.MethodPost:
		f.bytesByRemote = map[string]int64{}
		f.folderRequests, f.folderDenied = 0, 0
		f.logins, f.loginFailures, f.logouts = 0, 0, 0
		f.faultFiredAll = 0
		f.snapshotsCreated, f.snapshotsRemoved, f.changedAreaQueries, f.diskWrites = 0, 0, 0, 0
		pages.reset()
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	rep := statsReply{
		FolderBytesByRemote: map[string]int64{},
		FolderRequests:      f.folderRequests,
		FolderUnauthorized:  f.folderDenied,
		Logins:              f.logins,
		LoginFailures:       f.loginFailures,
		Logouts:             f.logouts,
		Sessions:            len(f.sessions),
		FaultsFired:         f.faultFiredAll,
		SnapshotsCreated:    f.snapshotsCreated,
		SnapshotsRemoved:    f.snapshotsRemoved,
		ChangedAreaQueries:  f.changedAreaQueries,
		DiskWrites:          f.diskWrites,
		PagesServed:         pages.served(),
	}
	for k, v := range f.bytesByRemote {
		rep.FolderBytesByRemote[k] = v
		rep.FolderBytes += v
	}
	writeJSON(w, http.StatusOK, rep)
}

type faultRequest struct {
	FolderFailAfterBytes *int64 `json:"folder_fail_after_bytes"`
	FailCount            int64  `json:"fail_count"`
	SnapshotCreateFail   int64  `json:"snapshot_create_fail"`
	QueryChangedFail     int64  `json:"query_changed_fail"`
}

type faultReply struct {
	Armed                bool  `json:"armed"`
	FolderFailAfterBytes int64 `json:"folder_fail_after_bytes"`
	ServedSinceArmed     int64 `json:"served_since_armed"`
	FailCount            int64 `json:"fail_count"`
	Fired                int64 `json:"fired"`
	SnapshotCreateFail   int64 `json:"snapshot_create_fail"` // failures still to come
	QueryChangedFail     int64 `json:"query_changed_fail"`
}

// POST {"folder_fail_after_bytes": N, "fail_count": K,
// "snapshot_create_fail": K, "query_changed_fail": K}: replaces the whole
// fault state; {} disarms everything. GET: current state.
func (f *frontend) serveFaults(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		var req faultRequest
		body, err := ioutil.ReadAll(r.Body)
		if err == nil && len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			err = dec.Decode(&req)
		}
		if err != nil || req.FailCount < 0 || (req.FolderFailAfterBytes != nil && *req.FolderFailAfterBytes < 0) ||
			req.SnapshotCreateFail < 0 || req.QueryChangedFail < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "expected {\"folder_fail_after_bytes\": N >= 0, \"fail_count\": K >= 0, \"snapshot_create_fail\": K >= 0, \"query_changed_fail\": K >= 0} (all optional) or {}"})
			return
		}
		f.snapshotCreateFail = req.SnapshotCreateFail
		f.queryChangedFail = req.QueryChangedFail
		f.faultArmed = req.FolderFailAfterBytes != nil
		f.faultBudget, f.faultServed, f.faultFired, f.faultCount = 0, 0, 0, 0
		if f.faultArmed {
			f.faultBudget = *req.FolderFailAfterBytes
			f.faultCount = req.FailCount
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, faultReply{
		Armed:                f.faultArmed,
		FolderFailAfterBytes: f.faultBudget,
		ServedSinceArmed:     f.faultServed,
		FailCount:            f.faultCount,
		Fired:                f.faultFired,
		SnapshotCreateFail:   f.snapshotCreateFail,
		QueryChangedFail:     f.queryChangedFail,
	})
}
