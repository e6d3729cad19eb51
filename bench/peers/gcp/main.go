// A peer control plane for the benchmark: go-control-plane's server over one of its caches, serving the
// very resources the shim renders (posted as Envoy JSON, parsed with protojson). Nodes are hashed to the
// shim's view key (role|listen address|access log|relay backend), so nodes with equal views share a
// snapshot, as in the shim. It serves state-of-the-world and delta ADS on one port.
//
//	-cache snapshot: the snapshot cache (one snapshot per view, a version per type from its content)
//	-cache linear:   a LinearCache per view and type (per-resource versions; only changed resources
//	                 are updated, and each resource is marshalled once for every stream)
//
// Snapshots are applied one at a time, as a deployment's reconciler does: concurrent POSTs wait for the
// one before them instead of all parsing at once. GET /stats reports how long parsing and applying took.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // /debug/pprof/goroutine?debug=2 shows where a slow update waits
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func viewOf(node *corev3.Node) string {
	f := node.GetMetadata().GetFields()
	// The same fields, in the same order, as the shim's viewKey (src/translate/view.ts).
	return f["tunnel-shim.io/role"].GetStringValue() + "|" + f["tunnel-shim.io/listen-address"].GetStringValue() +
		"|" + f["tunnel-shim.io/access-log"].GetStringValue() + "|" + f["tunnel-shim.io/relay-http-backend"].GetStringValue()
}

type viewHash struct{}

func (viewHash) ID(node *corev3.Node) string { return viewOf(node) }

// One posted view: every resource of each type, as Envoy JSON.
type views struct {
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Clusters  []json.RawMessage `json:"clusters"`
	Endpoints []json.RawMessage `json:"endpoints"`
}

// One type of a posted view, parsed: resources by name, with the JSON each came from.
type typed struct {
	url   string
	typ   types.ResponseType
	items map[string]types.Resource
	raw   map[string]string
}

func parse[T proto.Message](url string, typ types.ResponseType, raw []json.RawMessage, newMsg func() T) (typed, error) {
	out := typed{url, typ, make(map[string]types.Resource, len(raw)), make(map[string]string, len(raw))}
	for _, r := range raw {
		m := newMsg()
		if err := protojson.Unmarshal(r, m); err != nil {
			return out, err
		}
		name := cachev3.GetResourceName(m)
		out.items[name] = m
		out.raw[name] = string(r)
	}
	return out, nil
}

func parseView(body []byte) ([]typed, error) {
	var v views
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	ls, err1 := parse(resourcev3.ListenerType, types.Listener, v.Listeners, func() *listenerv3.Listener { return &listenerv3.Listener{} })
	rs, err2 := parse(resourcev3.RouteType, types.Route, v.Routes, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
	cs, err3 := parse(resourcev3.ClusterType, types.Cluster, v.Clusters, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
	es, err4 := parse(resourcev3.EndpointType, types.Endpoint, v.Endpoints,
		func() *endpointv3.ClusterLoadAssignment { return &endpointv3.ClusterLoadAssignment{} })
	for _, e := range []error{err1, err2, err3, err4} {
		if e != nil {
			return nil, e
		}
	}
	return []typed{cs, es, ls, rs}, nil
}

// What the peer did with the posted snapshots (GET /stats).
type stats struct {
	Posts      int     `json:"posts"`
	WaitMaxMs  float64 `json:"waitMaxMs"`
	ParseMaxMs float64 `json:"parseMaxMs"`
	ApplyMaxMs float64 `json:"applyMaxMs"`
	ApplySumMs float64 `json:"applySumMs"`
	ParseSumMs float64 `json:"parseSumMs"`
	WaitSumMs  float64 `json:"waitSumMs"`
	CacheMode  string  `json:"cache"`
	GoMaxProcs int     `json:"gomaxprocs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	addr := flag.String("xds", "127.0.0.1:0", "ADS listen address")
	ctl := flag.String("control", "127.0.0.1:0", "HTTP address where snapshots are posted")
	mode := flag.String("cache", "snapshot", "snapshot or linear")
	flag.Parse()
	ctx := context.Background()
	var apply func(view string, parsed []typed) error
	var cache cachev3.Cache
	switch *mode {
	case "snapshot":
		snapshots := cachev3.NewSnapshotCache(true, viewHash{}, nil)
		cache = snapshots
		apply = func(view string, parsed []typed) error { return applySnapshot(ctx, snapshots, view, parsed) }
	case "linear":
		linear := newLinearViews()
		cache = linear
		apply = linear.apply
	default:
		log.Fatalf("unknown -cache %q", *mode)
	}
	srv := serverv3.NewServer(ctx, cache, nil)
	g := grpc.NewServer(grpc.MaxConcurrentStreams(100000))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, srv)
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hl, err := net.Listen("tcp", *ctl)
	if err != nil {
		log.Fatal(err)
	}
	var one sync.Mutex // one update at a time
	var st stats
	var stMu sync.Mutex
	st.CacheMode = *mode
	http.HandleFunc("/snapshot", func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		body, _ := io.ReadAll(r.Body)
		one.Lock()
		defer one.Unlock()
		t1 := time.Now()
		parsed, err := parseView(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		t2 := time.Now()
		if err := apply(r.URL.Query().Get("view"), parsed); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		t3 := time.Now()
		stMu.Lock()
		st.Posts++
		st.WaitMaxMs = max(st.WaitMaxMs, ms(t1.Sub(t0)))
		st.ParseMaxMs = max(st.ParseMaxMs, ms(t2.Sub(t1)))
		st.ApplyMaxMs = max(st.ApplyMaxMs, ms(t3.Sub(t2)))
		st.WaitSumMs += ms(t1.Sub(t0))
		st.ParseSumMs += ms(t2.Sub(t1))
		st.ApplySumMs += ms(t3.Sub(t2))
		stMu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		stMu.Lock()
		defer stMu.Unlock()
		st.GoMaxProcs = runtimeProcs()
		_ = json.NewEncoder(w).Encode(st)
	})
	fmt.Printf("{\"xds\":%q,\"control\":%q}\n", lis.Addr().String(), hl.Addr().String())
	go func() { log.Fatal(http.Serve(hl, nil)) }()
	log.Fatal(g.Serve(lis))
}
