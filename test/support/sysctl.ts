// A kernel limit raised for the length of a test or benchmark and put back after, for what the machine's
// default cannot hold: many `logs -f` at once, each one an inotify instance in KWOK, against the
// default fs.inotify.max_user_instances of 128 for every cluster on the machine together.
//
// The real node (test/cluster/realnode) raises the same limit while it runs and, at its stop, writes
// back the value its record says the machine had. So while one runs, its record is what decides: it
// is set to our value for as long as we need it (its stop then leaves the limit raised) and to the
// machine's own value when we are done (its stop then puts that back). Without a live node, the value
// is put back only while it is still ours. (A node starting at the very moment this runs may miss it.)
import {
  type MachineRecord,
  readRecord,
  readSysctl,
  recordAlive,
  writeRecord,
  writeSysctl,
} from '../cluster/realnode/machine.ts';

function liveNodeRecord(): MachineRecord | undefined {
  const record = readRecord();
  return record && recordAlive(record) ? record : undefined;
}

function recordValue(record: MachineRecord, name: string, value: string): void {
  writeRecord({ ...record, sysctls: { ...record.sysctls, [name]: value } });
}

/** Raises `name` to at least `minimum` until the returned function is called. */
export function raiseSysctl(name: string, minimum: number): () => void {
  const raised = String(minimum);
  const node = liveNodeRecord();
  // The machine's own value: a live node's record has it when the node raised it meanwhile.
  const original = node?.sysctls[name] ?? readSysctl(name);
  if (Number(original) >= minimum) return () => {};
  if (Number(readSysctl(name)) < minimum) writeSysctl(name, raised);
  if (Number(readSysctl(name)) < minimum) {
    throw new Error(`could not raise ${name} from ${original} to ${raised} (needs root)`);
  }
  if (node) recordValue(node, name, raised);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    const record = readRecord();
    // A node (the same, or one started meanwhile, which found our value) puts the original back.
    if (record?.sysctls[name] === raised) recordValue(record, name, original);
    if (record && recordAlive(record)) return;
    if (readSysctl(name) === raised) writeSysctl(name, original);
  };
}
