//! mod_sasl2_fast: work in progress
