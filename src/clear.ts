// V8's Map/Set clear() allocates a fresh table even when the collection is empty, and for a collection
// that lives long it allocates it in old space, where only a full GC frees it. Cleared per stream per
// change (1,000 streams), that was a fifth of what the S1 rate run left for full GCs.

/** Empties `collection`, allocating nothing when it is empty already. */
export function clearIfAny(collection: { readonly size: number; clear(): void }): void {
  if (collection.size > 0) collection.clear();
}
