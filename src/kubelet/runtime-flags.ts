// How Spillway's Node.js runs: a small V8 young generation. Streams move network buffers through at
// tens of MB/s; with V8's default (a young generation growing to 32 MiB and more) dead buffers pile
// up between collections and resident memory grows by 60–80 MiB during one fast transfer. With 4 MiB
// semi-spaces they are collected within a few megabytes of traffic (measured: +25–35 MiB for a
// 330 MB exec output, and a lower resting memory). The `spillway` bin, the container image and
// `npm run spillway` start Node with these flags; so do the tests and benchmarks that measure it.
// --optimize-for-size makes V8 grow the old generation less before collecting it: at 10,000 pods peak
// RSS 293 -> 249 MiB, five virtual nodes x 2,000 pods 361 -> 286 MiB, idle 112 -> 96 MiB, for the
// same throughput and CPU seconds (scale benchmark, bench/results/scale-2026-12-02T14-22-41-588Z.json
// against scale-2026-12-02T14-05-32-063Z.json).
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--optimize-for-size'];
