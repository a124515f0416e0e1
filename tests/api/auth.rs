//! Authentication and roles: filled in below.
