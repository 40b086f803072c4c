//! The application pipeline: route → module cache → admission → sandbox →
//! response.

pub mod router;
