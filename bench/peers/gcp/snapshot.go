package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// One version per type, from its content: a change to endpoints must not resend listeners and clusters
// (NewSnapshot's single version would resend every type on every change).
func applySnapshot(ctx context.Context, cache cachev3.SnapshotCache, view string, parsed []typed) error {
	snap := &cachev3.Snapshot{}
	for _, t := range parsed {
		names := make([]string, 0, len(t.raw))
		for name := range t.raw {
			names = append(names, name)
		}
		sort.Strings(names)
		h := sha256.New()
		items := make([]types.Resource, 0, len(names))
		for _, name := range names {
			h.Write([]byte(t.raw[name]))
			items = append(items, t.items[name])
		}
		snap.Resources[t.typ] = cachev3.NewResources(hex.EncodeToString(h.Sum(nil))[:16], items)
	}
	return cache.SetSnapshot(ctx, view, snap)
}
