#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mod_password_reset::fuzzing::data_form(data));
