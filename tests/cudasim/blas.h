/*
 * blas.h - what the simulated cuBLAS (cublas.cc) and cuBLASLt (cublaslt.cc) share: an operand's
 * description and the conversions of the GEMMs' data types to and from fp32.
 */
#ifndef CUDASIM_BLAS_H
#define CUDASIM_BLAS_H

#include <library_types.h>

#include <cstddef>
#include <vector>

namespace cudasim {

/* cvt.rna.tf32.f32, the tensor cores' conversion to TF32. */
float to_tf32(float x);

/* Bytes of one element of the data types cumlp's GEMMs use (fp32, bf16, fp16). */
std::size_t element_bytes(cudaDataType type);

/* One operand of a product: rows x cols stored column-major with leading dimension ld. */
struct matrix {
    const void *p;
    int rows, cols, ld;
    cudaDataType type;
    std::size_t elements() const {
        return cols == 0 || rows == 0 ? 0 : (std::size_t)ld * (cols - 1) + rows;
    }
    std::size_t bytes() const { return elements() * element_bytes(type); }
};

/* The operand widened to fp32 (exact for bf16 and fp16), rounded to TF32 when tf32 is set, with
 * the padding between its columns. */
std::vector<float> fp32_copy(const matrix &m, bool tf32);

/* Stores the rows x cols results among fp32 values (laid out as m) into the 16-bit operand m,
 * rounded to nearest even; the padding between columns is not written. */
void store_rounded(const std::vector<float> &values, const matrix &m);

} // namespace cudasim

#endif /* CUDASIM_BLAS_H */
