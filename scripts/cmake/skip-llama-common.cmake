# Included right after llama.cpp's project() when llama-cpp-python builds (bootstrap.sh
# passes it as CMAKE_PROJECT_llama.cpp_INCLUDE). llama-cpp-python forces llama.cpp's
# "common" library on and installs it beside the package, but the Python bindings never
# load it; it is about a third of the compile. A normal variable shadows the forced cache
# entry within llama.cpp's directory, so common is neither built nor installed.
set(LLAMA_BUILD_COMMON OFF)
