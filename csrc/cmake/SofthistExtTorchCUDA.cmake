# Included before find_package(Torch), by CMakeLists.txt and by the installed
# SofthistExtConfig.cmake, so that a CUDA build of torch (what `pip install
# torch` gives on Linux) configures with no extra -D settings.
#
# Such a torch makes find_package(Torch) look for the CUDA toolkit (FindCUDA,
# then FindCUDAToolkit) and for libnvrtc. On its own, FindCUDA takes the
# toolkit from the nvcc on PATH, which may be a wrapper outside the toolkit,
# and FindCUDAToolkit looks for nvrtc only in the toolkit, while pip installs
# it beside torch (site-packages/nvidia/cu13/lib, nvidia/cuda_nvrtc/lib for
# CUDA 12). This sets CUDA_TOOLKIT_ROOT_DIR, CMAKE_CUDA_COMPILER and
# CUDA_nvrtc_LIBRARY where they are not set, and forgets what a failed
# configure left in the cache (NOTFOUND values, which find_package(Torch)
# would otherwise keep). Nothing here matters to a CPU build of torch.

# find_package(Torch) otherwise probes for a GPU to pick CUDA architectures,
# and its fallback list starts below what CUDA 13 supports.
if(NOT TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()

# A failed configure's NOTFOUND results, e.g. CUDA_NVRTC_LIB, which torch
# caches once and never searches again.
get_cmake_property(_softhist_cache_vars CACHE_VARIABLES)
foreach(_softhist_var IN LISTS _softhist_cache_vars)
  if(_softhist_var MATCHES "^(CUDA|CUDAToolkit|CMAKE_CUDA)" AND "${${_softhist_var}}" MATCHES "-NOTFOUND$")
    unset(${_softhist_var} CACHE)
  endif()
endforeach()

# The toolkit: CUDA_TOOLKIT_ROOT_DIR if it holds one, else $CUDA_HOME,
# $CUDA_PATH, the directory of the nvcc on PATH (symlinks resolved),
# /usr/local/cuda.
if(NOT EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/include/cuda_runtime.h")
  set(_softhist_toolkits "$ENV{CUDA_HOME}" "$ENV{CUDA_PATH}")
  find_program(_softhist_nvcc nvcc)
  if(_softhist_nvcc)
    get_filename_component(_softhist_nvcc "${_softhist_nvcc}" REALPATH)
    get_filename_component(_softhist_nvcc "${_softhist_nvcc}" DIRECTORY)
    get_filename_component(_softhist_nvcc "${_softhist_nvcc}" DIRECTORY)
    list(APPEND _softhist_toolkits "${_softhist_nvcc}")
  endif()
  unset(_softhist_nvcc CACHE)
  list(APPEND _softhist_toolkits /usr/local/cuda)
  foreach(_softhist_dir IN LISTS _softhist_toolkits)
    if(_softhist_dir AND EXISTS "${_softhist_dir}/include/cuda_runtime.h")
      # FORCE: replaces a directory without the toolkit, as FindCUDA caches
      # when the nvcc on PATH is a wrapper script.
      set(CUDA_TOOLKIT_ROOT_DIR "${_softhist_dir}" CACHE PATH "CUDA toolkit" FORCE)
      break()
    endif()
  endforeach()
endif()

if(EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/include/cuda_runtime.h")
  # Compile CUDA with the toolkit's nvcc, not another one found on PATH.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
     AND EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${CUDA_TOOLKIT_ROOT_DIR}/bin/nvcc" CACHE FILEPATH "CUDA compiler")
  endif()

  # libnvrtc: the toolkit's if it has one (FindCUDAToolkit finds it), else the
  # one of the toolkit's major version that pip installed beside torch.
  file(GLOB _softhist_nvrtc "${CUDA_TOOLKIT_ROOT_DIR}/lib*/libnvrtc.so*"
    "${CUDA_TOOLKIT_ROOT_DIR}/lib*/x64/nvrtc.lib")
  if(NOT CUDA_nvrtc_LIBRARY AND NOT _softhist_nvrtc)
    file(STRINGS "${CUDA_TOOLKIT_ROOT_DIR}/include/cuda.h" _softhist_version
      REGEX "^#define CUDA_VERSION [0-9]+")
    string(REGEX MATCH "[0-9]+$" _softhist_version "${_softhist_version}")
    if(_softhist_version)
      math(EXPR _softhist_major "${_softhist_version} / 1000")
    else()
      set(_softhist_major "[0-9]*")
    endif()
    # Where torch is: a prefix .../site-packages/torch/share/cmake[/Torch].
    set(_softhist_nvrtc "")
    string(REPLACE ":" ";" _softhist_env_prefix "$ENV{CMAKE_PREFIX_PATH}")
    foreach(_softhist_dir IN LISTS CMAKE_PREFIX_PATH _softhist_env_prefix Torch_DIR)
      if(_softhist_dir MATCHES "^(.*)/torch/share/cmake(/Torch)?/?$")
        file(GLOB _softhist_found "${CMAKE_MATCH_1}/nvidia/*/lib/libnvrtc.so.${_softhist_major}")
        list(APPEND _softhist_nvrtc ${_softhist_found})
      endif()
    endforeach()
    if(_softhist_nvrtc)
      list(SORT _softhist_nvrtc)
      list(GET _softhist_nvrtc 0 _softhist_nvrtc)
      set(CUDA_nvrtc_LIBRARY "${_softhist_nvrtc}" CACHE FILEPATH "libnvrtc (installed by pip beside torch)")
    endif()
  endif()
endif()
