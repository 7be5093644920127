//! `.go.buildinfo` reader. (Being written.)
