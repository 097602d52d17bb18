# Small NCCL finder: NCCL ships no CMake config. Looks in NCCL_ROOT, CUDA's tree and the
# usual system paths; sets NCCL_FOUND, NCCL_INCLUDE_DIR, NCCL_LIBRARY and target NCCL::nccl.
find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} $ENV{CUDA_HOME} /usr/local/cuda
  PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl
  HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} $ENV{CUDA_HOME} /usr/local/cuda
  PATH_SUFFIXES lib64 lib)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  set(NCCL_FOUND TRUE)
  if(NOT TARGET NCCL::nccl)
    add_library(NCCL::nccl UNKNOWN IMPORTED)
    set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  endif()
else()
  set(NCCL_FOUND FALSE)
endif()
