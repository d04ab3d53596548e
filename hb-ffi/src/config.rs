//! `hb_config`: options for a client, monitor or watcher. Every setter goes through
//! hb-core's `Options::set` (or its validators), so a bad value gets the same error as
//! in every other language.

use std::ffi::c_char;
use std::sync::Mutex;

use hb_core::Options;

use crate::boundary::{FfiResult, Handle};
use crate::error::hb_error;
use crate::status::hb_status;

/// Options for `hb_client_new`, `hb_monitor_new` and `hb_watcher_new`.
///
/// Owned by the caller: create with `hb_config_new`, free with `hb_config_free`. A handle
/// made from it copies the options, so the config may be changed or freed afterwards.
/// Unset options fall back to `HEARTBEATER_*` environment variables, then defaults.
/// Safe to use from several threads (setters are serialised).
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_config {
    tag: u64,
    options: Mutex<Options>,
}
handle_tag!(hb_config, "hb_config", 0x6862_636f_6e66_6701);

impl hb_config {
    pub(crate) fn snapshot(&self) -> Options {
        self.options.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Options) -> hb_core::Result<()>) -> FfiResult<()> {
        let mut guard = self.options.lock().unwrap_or_else(|p| p.into_inner());
        // Apply to a copy so that a rejected value leaves the config unchanged.
        let mut next = guard.clone();
        f(&mut next)?;
        *guard = next;
        Ok(())
    }
}

/// Creates an empty config. Never fails; free it with `hb_config_free`.
#[no_mangle]
pub extern "C" fn hb_config_new() -> *mut hb_config {
    ffi_value!(std::ptr::null_mut(), {
        Box::into_raw(Box::new(hb_config { tag: <hb_config as Handle>::TAG, options: Mutex::new(Options::new()) }))
    })
}

/// Frees a config. `hb_config_free(NULL)` does nothing. Handles made from it are unaffected.
#[no_mangle]
pub unsafe extern "C" fn hb_config_free(config: *mut hb_config) {
    ffi_value!((), { drop(unsafe { crate::boundary::take(config) }) })
}

/// Sets one option from text: the one string-keyed setter shared by every language.
///
/// Keys: `endpoint` (alias `listen`), `service`, `instance_id`, `ttl`, `interval`, `labels`,
/// `label`, `auth_key`, `auth_key_file`, `detector`, `false_dead_rate`, `false_suspect_rate`,
/// `max_peers`, `listen_threads`, `stop_timeout`,
/// `connect_timeout`, `event_capacity`, `traceparent`, `metrics_addr`, `etcd_ca_file`,
/// `etcd_cert_file`, `etcd_key_file`, `etcd_username`, `etcd_password`, `ack`, `http_addr`,
/// `http_token_file`, `health_addr`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`,
/// `tls_server_name` (a `tls://` endpoint's PEM files and the monitor's expected name).
/// Durations read like `200ms`, `15s`, `1.5s`; `interval` is `200ms` or `1s..30s`;
/// `labels` is `k=v,k=v` (replaces), `label` is one `k=v` (adds).
///
/// Errors: `HB_STATUS_NULL_ARGUMENT`, `HB_STATUS_INVALID_UTF8`, `HB_STATUS_CONFIG` (the
/// message names the key, the value and the accepted form). On error the config is unchanged.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set(
    config: *mut hb_config,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        let (key, value) = (str_arg!(key), str_arg!(value));
        config.update(|o| o.set(key, value))
    })
}

/// `key` is both the option and the C argument's name (for the NULL/UTF-8 message).
fn set_text(config: *mut hb_config, key: &'static str, value: *const c_char, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        let value = unsafe { crate::boundary::string(value, key) }?;
        config.update(|o| o.set(key, value))
    })
}

/// Where to beat to (client: `udp://host:port`, `tcp://host:port` or
/// `etcd://host:port[,host:port]/prefix`), what to listen on (monitor: a comma-separated
/// list of `udp://`/`tcp://` addresses, port 0 picks a free port) or what to watch
/// (watcher: `etcd://…`). Same as `hb_config_set(config, "endpoint", endpoint, err)`.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_endpoint(
    config: *mut hb_config,
    endpoint: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    set_text(config, "endpoint", endpoint, err)
}

/// The service name (1..=64 bytes of letters, digits, punctuation or symbols, no `/`; see docs/configuration.md).
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_service(
    config: *mut hb_config,
    service: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    set_text(config, "service", service, err)
}

/// This instance's id (same rules as the service name; default: hostname-pid).
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_instance_id(
    config: *mut hb_config,
    instance_id: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    set_text(config, "instance_id", instance_id, err)
}

/// The detector (`"adaptive"` or `"phi"`).
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_detector(
    config: *mut hb_config,
    detector: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    set_text(config, "detector", detector, err)
}

/// Replaces all labels from `k=v,k=v` text (empty text clears them).
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_labels(
    config: *mut hb_config,
    labels: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    set_text(config, "labels", labels, err)
}

/// The time-to-live after which silence means dead, in milliseconds.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_ttl_ms(
    config: *mut hb_config,
    ttl_ms: u64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        config.update(|o| o.set("ttl", &format!("{ttl_ms}ms")))
    })
}

/// The beat interval range in milliseconds (`min == max`: fixed; otherwise adaptive
/// between the bounds). Needs 10 <= min <= max.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_interval_ms(
    config: *mut hb_config,
    min_ms: u64,
    max_ms: u64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        config.update(|o| o.set("interval", &format!("{min_ms}ms..{max_ms}ms")))
    })
}

/// Adds (or replaces) one label. Unlike the `label` text key, `value` may contain `,` and `=`.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_label(
    config: *mut hb_config,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        let (key, value) = (str_arg!(key), str_arg!(value));
        config.update(|o| o.add_label(key, value))
    })
}

/// The shared HMAC key (at least 16 bytes of any value; copied). Same rules as the
/// `auth_key` text key, which covers keys that are valid UTF-8.
#[no_mangle]
pub unsafe extern "C" fn hb_config_set_auth_key(
    config: *mut hb_config,
    key: *const u8,
    len: usize,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        nonnull!(key);
        // SAFETY: non-NULL, `len` readable bytes per the header contract.
        let bytes = unsafe { std::slice::from_raw_parts(key, len) };
        config.update(|o| o.set_auth_key(bytes))
    })
}
