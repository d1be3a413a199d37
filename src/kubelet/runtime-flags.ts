// How Spillway's Node.js runs: a small V8 young generation. Streams move network buffers through at
// tens of MB/s; with V8's default (a young generation growing to 32 MiB and more) dead buffers pile
// up between collections and resident memory grows by 60–80 MiB during one fast transfer. With 4 MiB
// semi-spaces they are collected within a few megabytes of traffic (measured: +25–35 MiB for a
// 330 MB exec output, and a lower resting memory). The `spillway` bin, the container image and
// `npm run spillway` start Node with these flags; so do the tests and benchmarks that measure it.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
