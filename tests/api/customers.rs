//! Customers and portals: filled in below.
