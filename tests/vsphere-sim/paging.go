package main

// Paged property retrieval, as vCenter does it: RetrievePropertiesEx with
// options.maxObjects returns at most that many objects and a token, and
// ContinueRetrievePropertiesEx returns the next page for it (the last one
// without a token); CancelRetrievePropertiesEx drops the rest. Debian's
// govmomi simulator ignores maxObjects and answers with every object at
// once, so a client that must not hold a whole large inventory in memory
// could not be tested against it.
//
// The simulator's own answer is split as text: each top-level <objects>
// element is kept byte for byte (its xsi:type attributes included), and
// the envelope around them is reused for every page.

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type pendingPages struct {
	head, tail []byte   // the envelope of the first answer, around its objects
	objects    [][]byte // not yet served
	max        int
}

type pager struct {
	mu      sync.Mutex
	seq     int
	pending map[string]*pendingPages
	pages   int64 // pages served of split answers (stats: pages_served)
}

func (p *pager) served() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pages
}

func (p *pager) reset() {
	p.mu.Lock()
	p.pages = 0
	p.mu.Unlock()
}

var pages = &pager{pending: map[string]*pendingPages{}}

// splitObjects cuts a RetrievePropertiesExResponse into what comes before
// the first <objects>, each <objects>...</objects>, and what follows.
func splitObjects(body []byte) (head []byte, objects [][]byte, tail []byte, ok bool) {
	open, close := []byte("<objects>"), []byte("</objects>")
	start := bytes.Index(body, open)
	if start < 0 {
		return nil, nil, nil, false
	}
	head = body[:start]
	pos := start
	for {
		i := bytes.Index(body[pos:], open)
		if i < 0 || !bytes.Equal(bytes.TrimSpace(body[pos:pos+i]), nil) {
			break
		}
		j := bytes.Index(body[pos+i:], close)
		if j < 0 {
			return nil, nil, nil, false
		}
		end := pos + i + j + len(close)
		objects = append(objects, body[pos+i:end])
		pos = end
	}
	return head, objects, body[pos:], true
}

// page writes `objs` in the envelope head/tail, with `token` if not empty;
// `continued` renames the response element for ContinueRetrievePropertiesEx.
func writePage(w http.ResponseWriter, head, tail []byte, objs [][]byte, token string, continued bool) {
	h, t := head, tail
	if continued {
		h = bytes.Replace(h, []byte("RetrievePropertiesExResponse"), []byte("ContinueRetrievePropertiesExResponse"), 1)
		t = bytes.Replace(t, []byte("RetrievePropertiesExResponse"), []byte("ContinueRetrievePropertiesExResponse"), 1)
	}
	if token != "" {
		h = bytes.Replace(h, []byte("<returnval>"), []byte("<returnval><token>"+token+"</token>"), 1)
	}
	var out bytes.Buffer
	out.Write(h)
	for _, o := range objs {
		out.Write(o)
	}
	out.Write(t)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(out.Bytes())
}

// servePaged answers RetrievePropertiesEx with maxObjects, and
// Continue/CancelRetrievePropertiesEx; false if the call is not one of those
// (the simulator answers it).
func (f *frontend) servePaged(w http.ResponseWriter, r *http.Request, m *simulator.Method) bool {
	switch req := m.Body.(type) {
	case *types.RetrievePropertiesEx:
		max := int(req.Options.MaxObjects)
		if max <= 0 {
			return false
		}
		rec := newRecorder()
		f.next.ServeHTTP(rec, r)
		head, objs, tail, ok := splitObjects(rec.body.Bytes())
		if rec.status != 0 && rec.status != http.StatusOK || !ok || len(objs) <= max {
			rec.writeTo(w)
			return true
		}
		pages.mu.Lock()
		pages.seq++
		token := fmt.Sprintf("ferry-sim-page-%d", pages.seq)
		pages.pending[token] = &pendingPages{head: head, tail: tail, objects: objs[max:], max: max}
		pages.pages++
		pages.mu.Unlock()
		writePage(w, head, tail, objs[:max], token, false)
		return true
	case *types.ContinueRetrievePropertiesEx:
		pages.mu.Lock()
		p := pages.pending[req.Token]
		var objs [][]byte
		token := ""
		if p != nil {
			n := p.max
			if n > len(p.objects) {
				n = len(p.objects)
			}
			objs, p.objects = p.objects[:n], p.objects[n:]
			pages.pages++
			if len(p.objects) > 0 {
				token = req.Token
			} else {
				delete(pages.pending, req.Token)
			}
		}
		pages.mu.Unlock()
		if p == nil {
			writeSOAPFault(w, "A specified parameter was not correct: token",
				&types.InvalidArgument{InvalidProperty: "token"})
			return true
		}
		writePage(w, p.head, p.tail, objs, token, true)
		return true
	case *types.CancelRetrievePropertiesEx:
		pages.mu.Lock()
		delete(pages.pending, req.Token)
		pages.mu.Unlock()
		writeSOAPResult(w, &types.CancelRetrievePropertiesExResponse{})
		return true
	}
	return false
}
