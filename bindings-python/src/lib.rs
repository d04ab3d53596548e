//! Python module over hb-core.
