// V8's Map/Set clear() allocates a fresh table even when the collection is empty, and for a collection
// that lives long it allocates it in old space, where only a full GC frees it. Cleared per stream per
// change, 1,000 streams at a time (with the clear-and-refill in KnownVersions.rebase, about a tenth of
// what the S1 delta rate run promoted: 235 -> 214 MB sampled in 20 s).

/** Empties `collection`, allocating nothing when it is empty already. */
export function clearIfAny(collection: { readonly size: number; clear(): void }): void {
  if (collection.size > 0) collection.clear();
}
