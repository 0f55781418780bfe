# node-gyp build of the addon: the same sources and flags as CMakeLists.txt (the default,
# cmake-js build). Nothing here is listed twice: scripts/libtorch-flags.js reads the source
# list (every .cpp under native/, as CMakeLists.txt globs it) and libtorch's location from
# .torchscope/config.json (written by scripts/setup.js, which gives CMake CMAKE_PREFIX_PATH).
# Build: npm run build:gyp (node-gyp rebuild); output build/Release/torchscope.node.
{
  "targets": [
    {
      "target_name": "torchscope",
      "sources": ["<!@(node scripts/libtorch-flags.js sources)"],
      "include_dirs": ["<!@(node scripts/libtorch-flags.js include_dirs)"],
      "defines": ["<!@(node scripts/libtorch-flags.js defines)"],
      # node-gyp's defaults (common.gypi) are -fno-rtti -fno-exceptions -Wextra: libtorch needs
      # RTTI, node-addon-api (NAPI_CPP_EXCEPTIONS) needs exceptions, CMake has no -Wextra.
      "cflags!": ["-fno-exceptions", "-fno-rtti", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-Wextra"],
      "cflags_cc": ["<!@(node scripts/libtorch-flags.js cflags)"],
      "ldflags": ["<!@(node scripts/libtorch-flags.js ldflags)"],
      "libraries": ["<!@(node scripts/libtorch-flags.js libraries)"],
      "configurations": {
        "Release": {
          # As CMAKE_BUILD_TYPE=Release: -O3 (node-gyp's default too) -DNDEBUG, and no
          # -fno-omit-frame-pointer (node-gyp adds it for perf's JS stacks).
          "defines": ["NDEBUG"],
          "cflags!": ["-fno-omit-frame-pointer"],
          "cflags_cc!": ["-fno-omit-frame-pointer"]
        }
      }
    }
  ]
}
