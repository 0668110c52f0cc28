import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * While file data flows in bulk, the old generation may grow to twice what is live before it is
 * collected (V8's --heap-growing-percent). Under --optimize-for-size it may grow only a little,
 * and the pieces in flight outlive the small young generation, so a 256 MiB transfer ran a full
 * collection every ~100 ms: a third of each node's CPU (bench:mesh). Doubling took 15-20% off the
 * CPU of that transfer at the same peak RSS.
 */
export const BULK_HEAP_GROWING_PERCENT = 100;
/**
 * V8 12 and later (Node 22 and 24) start marking the old generation again and again while it is
 * half its limit (--trace-incremental-marking: "allocation limit" at 14 of 29 MB): with doubling,
 * 16-39 full collections per node over bench:mesh's large file, edit and rename, and 83-108 MB/s
 * for the file where Node 20 made 116-140. Growing by 300% there: 5-14 collections, 116-143 MB/s,
 * for a peak ~10-15 MiB higher (127-134 MiB per node in bench:mesh's full runs on Node 22 and 24).
 * Node 20 keeps doubling: it does not mark early, and by 300% its peak passed bench:mesh's 120 MiB.
 */
export const BULK_HEAP_GROWING_PERCENT_V8_12 = 300;
const V8_MAJOR = Number(process.versions.v8.split('.')[0]);
/**
 * On V8 12 and later, file data from 2 MB/s on is a bulk flow (BulkFlow counts 250 ms windows),
 * not from its default 16 MB/s. Those V8s mark the old generation whenever it has less room left
 * than the young generation's size, and outside bulk flows it grows only a little: 2,000 small
 * files (bench:mesh, 5.4 MB in ~1.5 s) took the receiver through 10-14 full collections where
 * Node 20's made 2-6, a third more CPU. As a bulk flow, in three alternating pairs each: Node 22
 * 1.39-1.81 s against 1.91-2.19, Node 24 1.21-1.72 against 1.52-1.69, for a receiver's peak
 * 14-17 MiB higher (95-114 MiB). Node 20 had no gain for the same memory: it keeps the default.
 */
export const BULK_FLOW_BYTES_PER_WINDOW_V8_12 = 512 * 1024;
/** The bulk flow threshold this V8 wants (for MeshNode's bulkFlowBytesPerWindow), or undefined for BulkFlow's default. */
export const BULK_FLOW_BYTES_PER_WINDOW = V8_MAJOR >= 12 ? BULK_FLOW_BYTES_PER_WINDOW_V8_12 : undefined;
/**
 * No doubling above this much live heap: a node indexing 100,000 files holds tens of MiB, and
 * doubling those would cost more memory than a Raspberry Pi should give (bench:pi).
 */
export const BULK_GROWTH_MAX_HEAP_BYTES = 48 * 1024 * 1024;

/**
 * Outside bulk flows, V8's young generation (both halves) stops growing at this size. V8 grows it
 * up to 32 MiB whenever enough survives its scavenges, and shrinks it again when allocation slows:
 * an index exchange of 100,000 records (bench:pi) went through 1 -> 32 -> 1 MiB several times a
 * second, and its peaks were at 32. Capped at 16 MiB, that run's peak RSS was ~6 MiB lower for
 * ~4% more CPU (at 8 MiB: ~36% more). A bulk flow is left its full size: file data in flight
 * outlives a smaller one and is promoted, and full collections follow.
 */
export const YOUNG_GENERATION_CAP_BYTES = 16 * 1024 * 1024;
/**
 * How much each growth of the young generation multiplies it (--semi-space-growth-factor; V8's own
 * is 2). A resting node's young generation shrinks back to its smallest (1 MiB semi-spaces),
 * and a burst of work after it (2,000 small files arriving) ran ~30 scavenges while the factor 2
 * took it up step by step (--trace-gc). 8 takes it to the cap in one growth: the small files
 * 1.50 against 1.60 s on average in six alternating pairs (bench:mesh), the receiver's CPU ~9%
 * lower; the large file as fast; bench:pi's peak 132 against 138 MiB in one run each. The cap and
 * V8's maximum stay where they were.
 */
const SEMI_SPACE_GROWTH_FACTOR = 8;

/**
 * Buffers held at rest that call for a full collection. Buffers promoted while a node worked (file
 * data read, sent, received) are freed only by one, and a resting node may make none for hours:
 * in bench:compare on Node 22, 27-41 MiB of them were still held 15 s after the edit, the RSS at
 * the end 107-122 MiB where Node 20's was 64-78. A collection of a resting node's heap takes
 * 5-30 ms.
 */
export const REST_BUFFERS_COLLECTED_BYTES = 4 * 1024 * 1024;

let favoured = false;
let growing = false;
let flowing = false;
let youngCapped = false;
let fullCollection: (() => void) | undefined;

/**
 * V8's full collection (what `gc()` does under --expose-gc), made once: the flag is on only while
 * one new context is made for it, so no other code ever sees a global gc.
 */
function collectFully(): void {
  if (fullCollection === undefined) {
    setFlagsFromString('--expose-gc');
    fullCollection = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
  }
  fullCollection();
}

/**
 * Whether this V8 gets the cap: up to V8 12 (Node 20 and 22) the young generation grows only by
 * --semi-space-growth-factor. V8 13 (Node 24) grows it in other steps too, so the factor is no
 * cap there; under the same load it kept it at 8-16 MiB itself, now and then up to 20.
 */
export const YOUNG_GENERATION_CAPPED = V8_MAJOR < 13;

/**
 * Run after each collection: the young generation (both halves) grows no more once at the cap,
 * outside a bulk flow. V8 reads its growth factor when it next grows it.
 */
function capYoungGeneration(): void {
  const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
  const cap = !flowing && young >= YOUNG_GENERATION_CAP_BYTES;
  if (cap === youngCapped) return;
  youngCapped = cap;
  setFlagsFromString(`--semi-space-growth-factor=${cap ? 1 : SEMI_SPACE_GROWTH_FACTOR}`);
}

/**
 * Switches V8 to collect the old generation before it grows to several times what is live (a GC
 * heuristic; no object layout depends on it). Hashing 100,000 files promotes garbage faster than
 * the default growth collects it (peak RSS ~180 MiB instead of ~115 MiB), and a node that runs for
 * days should stay small. It is not on from the start of every command: a walk of 100,000
 * unchanged files takes twice as long with it (most of it in the collector). Once on, it stays on.
 *
 * Buffers a scavenge finds dead are also counted as freed at once, not by a sweep on another
 * thread that ends later. V8 checks its old-generation limit right after each scavenge, with the
 * external memory allocated since the last full collection counted in: while the sweep ran, the
 * Buffers just freed were still counted, so every ~32 MB of file data in flight started a full
 * collection (a 256 MiB transfer: 33 on the sender, every ~100 ms; with this, 8-13, the sender's
 * CPU 2.3-2.7 -> 1.5-1.7 s and the transfer ~25% faster, bench:mesh). The sweep it makes
 * synchronous is a walk over the list of young Buffers, on the main thread.
 */
export function favourMemory(): void {
  if (favoured) return;
  favoured = true;
  setFlagsFromString('--optimize-for-size');
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  // Told of every collection; an observer does not keep the process alive.
  if (YOUNG_GENERATION_CAPPED) new PerformanceObserver(capYoungGeneration).observe({ entryTypes: ['gc'] });
}

/**
 * Lets the heap double while file data flows in bulk (see BULK_HEAP_GROWING_PERCENT), and not
 * after; the young generation may grow to V8's own maximum meanwhile (YOUNG_GENERATION_CAP_BYTES).
 */
export function bulkFlowing(bulk: boolean): void {
  flowing = bulk;
  if (favoured && YOUNG_GENERATION_CAPPED) capYoungGeneration();
  const grow = favoured && bulk && getHeapStatistics().used_heap_size < BULK_GROWTH_MAX_HEAP_BYTES;
  if (grow === growing) return;
  growing = grow;
  // 0 is V8's default: its own growth factor, which --optimize-for-size keeps near 1.
  const bulkPercent = V8_MAJOR >= 12 ? BULK_HEAP_GROWING_PERCENT_V8_12 : BULK_HEAP_GROWING_PERCENT;
  setFlagsFromString(`--heap-growing-percent=${grow ? bulkPercent : 0}`);
}

/**
 * For a node that has gone quiet after work: a full collection if Buffers hold more than
 * REST_BUFFERS_COLLECTED_BYTES (a resting node holds under 1 MiB of them), and whether one was
 * made (the caller then trims what it freed). Not during a bulk flow, whose Buffers are in use.
 */
export function collectAtRest(): boolean {
  if (!favoured || flowing || process.memoryUsage().arrayBuffers < REST_BUFFERS_COLLECTED_BYTES) return false;
  collectFully();
  return true;
}
