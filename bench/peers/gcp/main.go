// A peer control plane for the benchmark: go-control-plane's snapshot cache and server, serving the
// very resources the shim renders (posted as Envoy JSON, parsed with protojson). Nodes are hashed to
// the shim's view key (role|listen address|access log|relay backend), so nodes with equal views share a snapshot,
// as in the shim. It serves state-of-the-world and delta ADS on one port.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

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
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type viewHash struct{}

func (viewHash) ID(node *corev3.Node) string {
	f := node.GetMetadata().GetFields()
	// The same fields, in the same order, as the shim's viewKey (src/translate/view.ts).
	return f["tunnel-shim.io/role"].GetStringValue() + "|" + f["tunnel-shim.io/listen-address"].GetStringValue() + "|" + f["tunnel-shim.io/access-log"].GetStringValue() + "|" + f["tunnel-shim.io/relay-http-backend"].GetStringValue()
}

type views struct {
	Version   string            `json:"version"`
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Clusters  []json.RawMessage `json:"clusters"`
	Endpoints []json.RawMessage `json:"endpoints"`
}

func parse[T proto.Message](raw []json.RawMessage, newMsg func() T) ([]types.Resource, error) {
	out := make([]types.Resource, 0, len(raw))
	for _, r := range raw {
		m := newMsg()
		if err := protojson.Unmarshal(r, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func main() {
	addr := flag.String("xds", "127.0.0.1:0", "ADS listen address")
	ctl := flag.String("control", "127.0.0.1:0", "HTTP address where snapshots are posted")
	flag.Parse()
	ctx := context.Background()
	cache := cachev3.NewSnapshotCache(true, viewHash{}, nil)
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
	http.HandleFunc("/snapshot", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var v views
		if err := json.Unmarshal(body, &v); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ls, err1 := parse(v.Listeners, func() *listenerv3.Listener { return &listenerv3.Listener{} })
		rs, err2 := parse(v.Routes, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
		cs, err3 := parse(v.Clusters, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
		es, err4 := parse(v.Endpoints, func() *endpointv3.ClusterLoadAssignment { return &endpointv3.ClusterLoadAssignment{} })
		for _, e := range []error{err1, err2, err3, err4} {
			if e != nil {
				http.Error(w, e.Error(), 400)
				return
			}
		}
		// One version per type, from its content: a change to endpoints must not resend listeners and
		// clusters (NewSnapshot's single version would resend every type on every change).
		snap := &cachev3.Snapshot{}
		for _, t := range []struct {
			typ   types.ResponseType
			raw   []json.RawMessage
			items []types.Resource
		}{{types.Listener, v.Listeners, ls}, {types.Route, v.Routes, rs}, {types.Cluster, v.Clusters, cs}, {types.Endpoint, v.Endpoints, es}} {
			h := sha256.New()
			for _, r := range t.raw {
				h.Write(r)
			}
			snap.Resources[t.typ] = cachev3.NewResources(hex.EncodeToString(h.Sum(nil))[:16], t.items)
		}
		if err := cache.SetSnapshot(ctx, r.URL.Query().Get("view"), snap); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	fmt.Printf("{\"xds\":%q,\"control\":%q}\n", lis.Addr().String(), hl.Addr().String())
	go func() { log.Fatal(http.Serve(hl, nil)) }()
	log.Fatal(g.Serve(lis))
}
