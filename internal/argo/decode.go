package argo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Bounds on what decoding a Workflow keeps or buffers. Whoever may edit a Workflow writes its status, so
// memory must not follow what it says: nodes are counted, children too, and no single value (a node, a
// string, a key) is buffered beyond MaxValueBytes. Argo itself keeps a Workflow's node status within
// about 1 MiB of compressed JSON, some 15,000 nodes; beyond that it offloads them to its database.
const (
	// MaxNodes is the most nodes a node status may hold.
	MaxNodes = 30000
	// MaxChildren is the most child ids all nodes may list together (a tree lists one per node; a DAG
	// with fan-in, a few more).
	MaxChildren = 100000
	// MaxValueBytes bounds the JSON of one node, and of any other single value read: Argo's largest
	// node (outputs and all) is far below it.
	MaxValueBytes = 2 << 20
	// MaxCompressedBytes bounds status.compressedNodes, the one value of a Workflow that may be larger:
	// the API server takes no object larger than 3 MiB.
	MaxCompressedBytes = 4 << 20
)

// LimitError says which bound a Workflow exceeded.
type LimitError struct {
	What  string
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s exceeds resume-trigger's limit of %d", e.What, e.Limit)
}

// DecodeWorkflow reads the Workflow JSON r holds, keeping only the fields of Workflow, within the bounds
// above. Fields it does not keep are skipped token by token, so neither they nor the whole object are
// ever held.
func DecodeWorkflow(r io.Reader) (*Workflow, error) {
	s := newStream(r)
	var wf Workflow
	err := s.object(func(key string) error {
		switch key {
		case "metadata":
			return s.object(func(key string) error {
				switch key {
				case "name":
					return s.decode(&wf.Name)
				case "namespace":
					return s.decode(&wf.Namespace)
				case "uid":
					return s.decode(&wf.UID)
				case "annotations":
					return s.decode(&wf.Annotations)
				}
				return s.skip()
			})
		case "spec":
			return s.spec(&wf.Spec)
		case "status":
			return s.status(&wf.Status)
		}
		return s.skip()
	})
	if err != nil {
		return nil, err
	}
	return &wf, nil
}

// DecodeNodes reads a node status (a JSON object of nodes by id, or null) from r, within the bounds
// above. What follows the object in r is not read.
func DecodeNodes(r io.Reader) (Nodes, error) {
	return newStream(r).nodes()
}

// UnmarshalJSON decodes a node status within the bounds above, whatever decodes it.
func (n *Nodes) UnmarshalJSON(data []byte) error {
	nodes, err := DecodeNodes(bytes.NewReader(data))
	if err != nil {
		return err
	}
	*n = nodes
	return nil
}

// stream reads JSON a token or a value at a time from a window-bounded reader.
type stream struct {
	dec *json.Decoder
	w   *window
}

func newStream(r io.Reader) *stream {
	w := &window{r: r}
	return &stream{dec: json.NewDecoder(w), w: w}
}

// window refuses to read further than MaxValueBytes past the start of the value being read: the
// decoder buffers a whole value before it decodes it, and this bounds that buffer.
type window struct {
	r                 io.Reader
	read, stop, limit int64
}

func (w *window) Read(p []byte) (int, error) {
	if w.read >= w.stop {
		return 0, &LimitError{What: "a single JSON value", Limit: int(w.limit)}
	}
	if room := w.stop - w.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := w.r.Read(p)
	w.read += int64(n)
	return n, err
}

// open lets the next value read take up to limit bytes.
func (s *stream) open(limit int64) {
	s.w.stop, s.w.limit = s.dec.InputOffset()+limit, limit
}

func (s *stream) token() (json.Token, error) {
	s.open(MaxValueBytes)
	return s.dec.Token()
}

func (s *stream) decode(v any) error {
	s.open(MaxValueBytes)
	return s.dec.Decode(v)
}

// skip reads past the next value, a token at a time.
func (s *stream) skip() error {
	depth := 0
	for {
		t, err := s.token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// object reads a JSON object (or null), calling field for each key; field must read the key's value.
func (s *stream) object(field func(key string) error) error {
	if null, err := s.begin('{', "object"); null || err != nil {
		return err
	}
	for s.dec.More() {
		k, err := s.token()
		if err != nil {
			return err
		}
		if err := field(k.(string)); err != nil {
			return err
		}
	}
	_, err := s.token()
	return err
}

// array reads a JSON array (or null), calling elem for each element; elem must read it.
func (s *stream) array(elem func() error) error {
	if null, err := s.begin('[', "array"); null || err != nil {
		return err
	}
	for s.dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := s.token()
	return err
}

// begin reads the opening delimiter of an object or array; null is true when the value is JSON null.
func (s *stream) begin(open json.Delim, what string) (null bool, err error) {
	t, err := s.token()
	switch {
	case err != nil:
		return false, err
	case t == nil:
		return true, nil
	case t != open:
		return false, fmt.Errorf("want a JSON %s, not %v", what, t)
	}
	return false, nil
}

// templates reads a list of templates, keeping their names.
func (s *stream) templates() ([]Template, error) {
	var out []Template
	err := s.array(func() error {
		t, err := s.template()
		out = append(out, t)
		return err
	})
	return out, err
}

func (s *stream) template() (Template, error) {
	var t Template
	err := s.object(func(key string) error {
		switch key {
		case "name":
			return s.decode(&t.Name)
		case "steps":
			var c calls
			if err := s.decode(&c.Steps); err != nil {
				return err
			}
			t.Calls = t.Calls || c.has()
			t.CallsOut = t.CallsOut || c.callsOut(0)
			return nil
		case "dag":
			var c calls
			if err := s.decode(&c.DAG); err != nil {
				return err
			}
			t.Calls = t.Calls || c.has()
			t.CallsOut = t.CallsOut || c.callsOut(0)
			return nil
		}
		return s.skip()
	})
	return t, err
}

func (s *stream) spec(spec *WorkflowSpec) error {
	return s.object(func(key string) error {
		switch key {
		case "templates":
			ts, err := s.templates()
			spec.Templates = ts
			return err
		case "workflowTemplateRef":
			return s.decode(&spec.WorkflowTemplateRef)
		case "hooks":
			var h hooks
			if err := s.decode(&h); err != nil {
				return err
			}
			spec.HooksCallOut = h.callOut()
			return nil
		}
		return s.skip()
	})
}

func (s *stream) status(st *WorkflowStatus) error {
	return s.object(func(key string) error {
		switch key {
		case "phase":
			return s.decode(&st.Phase)
		case "nodes":
			nodes, err := s.nodes()
			st.Nodes = nodes
			return err
		case "compressedNodes":
			s.open(MaxCompressedBytes)
			if err := s.dec.Decode(&st.CompressedNodes); err != nil {
				return fmt.Errorf("status.compressedNodes: %w", err)
			}
			return nil
		case "offloadNodeStatusVersion":
			return s.decode(&st.OffloadNodeStatusVersion)
		case "storedTemplates":
			return s.object(func(key string) error {
				t, err := s.template()
				if err == nil {
					if st.StoredTemplates == nil {
						st.StoredTemplates = map[string]Template{}
					}
					st.StoredTemplates[key] = t
				}
				return err
			})
		case "storedWorkflowTemplateSpec":
			st.StoredWorkflowSpec = &WorkflowSpec{}
			return s.spec(st.StoredWorkflowSpec)
		}
		return s.skip()
	})
}

// nodes reads a node status, one node at a time, counting nodes and children.
func (s *stream) nodes() (Nodes, error) {
	var nodes Nodes
	entries, children := 0, 0
	err := s.object(func(id string) error {
		if nodes == nil {
			nodes = Nodes{}
		}
		// Entries, not distinct ids: a key repeated a million times costs as much to read as a million nodes.
		if entries++; entries > MaxNodes {
			return &LimitError{What: "the number of nodes", Limit: MaxNodes}
		}
		var n Node
		if err := s.decode(&n); err != nil {
			var limit *LimitError
			if errors.As(err, &limit) {
				return &LimitError{What: fmt.Sprintf("the JSON of node %.100q", id), Limit: MaxValueBytes}
			}
			return fmt.Errorf("node %.100q: %w", id, err)
		}
		if len(n.Children) > MaxNodes {
			return &LimitError{What: fmt.Sprintf("the number of children of node %.100q", id), Limit: MaxNodes}
		}
		if children += len(n.Children); children > MaxChildren {
			return &LimitError{What: "the number of children all nodes list", Limit: MaxChildren}
		}
		nodes[id] = n
		return nil
	})
	return nodes, err
}
