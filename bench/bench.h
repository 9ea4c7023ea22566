/*
 * bench.h - the training-step benchmark shared by the standalone `cumlp-bench` program and the
 * `cumlp bench` subcommand.
 */
#ifndef CUMLP_BENCH_H
#define CUMLP_BENCH_H

/* Runs the benchmark with command-line arguments (argv[0] is the program name; `cumlp-bench
 * --help` lists the options). Prints one table row per configuration to stdout, writes JSON when
 * asked, and returns a process exit code as the `cumlp` command does: 0 on success, 1 for bad
 * arguments (or nothing to run), 2 when a run or a file write fails. */
int cumlp_bench_main(int argc, char **argv);

#endif /* CUMLP_BENCH_H */
