package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// linearViews is go-control-plane's LinearCache per node view and type: a request goes to the cache of
// its node's view (what cachev3.MuxCache does, with a lock so views can be added while streams run).
// Each update touches only the resources whose JSON changed, so their versions alone move.
type linearViews struct {
	mu     sync.RWMutex
	caches map[string]*cachev3.LinearCache // view + "\x00" + type URL
	raw    map[string]map[string]string    // the JSON each cache's resources came from
}

func newLinearViews() *linearViews {
	return &linearViews{caches: map[string]*cachev3.LinearCache{}, raw: map[string]map[string]string{}}
}

func (l *linearViews) get(view, url string) (*cachev3.LinearCache, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, ok := l.caches[view+"\x00"+url]
	return c, ok
}

func (l *linearViews) apply(view string, parsed []typed) error {
	for _, t := range parsed {
		key := view + "\x00" + t.url
		l.mu.Lock()
		c, ok := l.caches[key]
		if !ok {
			c = cachev3.NewLinearCache(t.url)
			l.caches[key] = c
			l.raw[key] = map[string]string{}
		}
		old := l.raw[key]
		l.mu.Unlock()
		update := map[string]types.Resource{}
		var remove []string
		for name, raw := range t.raw {
			if old[name] != raw {
				update[name] = t.items[name]
			}
		}
		for name := range old {
			if _, ok := t.raw[name]; !ok {
				remove = append(remove, name)
			}
		}
		if len(update) > 0 || len(remove) > 0 {
			if err := c.UpdateResources(update, remove); err != nil {
				return err
			}
		}
		l.mu.Lock()
		l.raw[key] = t.raw
		l.mu.Unlock()
	}
	return nil
}

func (l *linearViews) CreateWatch(r *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	c, ok := l.get(viewOf(r.GetNode()), r.GetTypeUrl())
	if !ok {
		return nil, fmt.Errorf("no resources for view %q type %s", viewOf(r.GetNode()), r.GetTypeUrl())
	}
	return c.CreateWatch(r, sub, out)
}

func (l *linearViews) CreateDeltaWatch(r *cachev3.DeltaRequest, sub cachev3.Subscription,
	out chan cachev3.DeltaResponse) (func(), error) {
	c, ok := l.get(viewOf(r.GetNode()), r.GetTypeUrl())
	if !ok {
		return nil, fmt.Errorf("no resources for view %q type %s", viewOf(r.GetNode()), r.GetTypeUrl())
	}
	return c.CreateDeltaWatch(r, sub, out)
}

func (l *linearViews) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, fmt.Errorf("fetch is not served")
}
