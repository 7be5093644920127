//! The live-process backend: ptrace freeze, batched reads. (Being written.)
