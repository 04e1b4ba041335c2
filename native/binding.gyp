{
  "variables": {
    "flotilla_cflags": ["-O3", "-std=c++17", "-fexceptions", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
  },
  "targets": [
    {
      "target_name": "flotilla_kernels_avx2",
      "type": "static_library",
      "sources": ["<!@(node sources.mjs avx2)"],
      "conditions": [
        ["target_arch=='x64'", {
          "defines": ["FLOTILLA_HAVE_AVX2"],
          "cflags_cc": ["<@(flotilla_cflags)", "-fPIC", "-mavx2", "-mfma", "-mf16c"]
        }]
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"]
    },
    {
      "target_name": "flotilla_native",
      "sources": ["<!@(node sources.mjs addon core)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
      "cflags_cc": ["<@(flotilla_cflags)"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["target_arch=='x64'", {
          "defines": ["FLOTILLA_HAVE_AVX2"],
          "dependencies": ["flotilla_kernels_avx2"]
        }],
        ["target_arch=='x64' and '<!(node -p \"process.env.FLOTILLA_GYP_AVX512 || 0\")'=='1'", {
          "defines": ["FLOTILLA_HAVE_AVX512"],
          "dependencies": ["flotilla_kernels_avx512"]
        }],
        ["'<!(node -p \"process.env.FLOTILLA_GYP_CUDA || 0\")'=='1'", {
          "defines": ["FLOTILLA_HAVE_CUDA"],
          "libraries": ["<!(node -p \"process.env.FLOTILLA_GYP_CUDA_LIB\")", "<!@(node -p \"process.env.FLOTILLA_GYP_CUDART\")", "-ldl", "-lrt"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64' and '<!(node -p \"process.env.FLOTILLA_GYP_AVX512 || 0\")'=='1'", {
      "targets": [
        {
          "target_name": "flotilla_kernels_avx512",
          "type": "static_library",
          "sources": ["<!@(node sources.mjs avx512)"],
          "cflags_cc": ["<@(flotilla_cflags)", "-fPIC", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"]
        }
      ]
    }]
  ]
}
