#!/usr/bin/env node
// The spillway command line: wiring only; the work lives in the components it starts.
import { Command } from 'commander';
import { VERSION } from './version.ts';

export function buildProgram(): Command {
  const program = new Command('spillway')
    .description(
      'A virtual kubelet that shows each remote Kubernetes cluster as one Node in a host cluster\n' +
        'and runs the pods bound to it as delegate pods in that remote cluster.',
    )
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError();
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`spillway ${VERSION}\n`);
    });
  return program;
}

if (import.meta.main) {
  await buildProgram().parseAsync();
}
