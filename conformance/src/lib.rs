//! orcd-conformance (being written)
