//! pclntab reader. (Being written.)
