/* bench_main.c - the standalone `cumlp-bench` program (see bench.h). */
#include "bench.h"

int main(int argc, char **argv) {
    return cumlp_bench_main(argc, argv);
}
