# features.cmake - optional library features beyond the backends.
#
# zlib: the IDX dataset reader (src/data*.c) reads gzip-compressed MNIST files. cumlp_objects is an
# object library, so its consumers (cumlp, cumlp_static) get the dependency through
# CUMLP_LINK_LIBS; pkg-config users through CUMLP_PC_LIBS_PRIVATE.
find_package(ZLIB REQUIRED)
target_include_directories(cumlp_objects PRIVATE ${ZLIB_INCLUDE_DIRS})
list(APPEND CUMLP_LINK_LIBS ZLIB::ZLIB)
set(CUMLP_PC_LIBS_PRIVATE "${CUMLP_PC_LIBS_PRIVATE} -lz")
