//! The plugin's side of the boundary, behind [`crate::export_module!`]: the root module's
//! functions, the [`PluginInstance`] that carries calls to a [`crate::Module`], and the
//! [`Backend`] that carries a module's host calls back through [`HostServicesRef`]. Every entry
//! point catches panics ([`crate::sdk::guard`]): a panic crossing the ABI would abort the host.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::{
    library::LibHeader,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    sabi_types::RMut,
    std_types::{RResult, RSlice, RSliceMut, RStr, RString, RVec},
};

use super::{
    AbiError, BlockingTask, BlockingTask_TO, EventFlow, HostCtx, HostServicesRef, LogLevel,
    PluginInfo, PluginInstance, PluginInstanceBox, PluginInstance_TO, PluginMod, PluginModRef,
};
use crate::calls::dispatch_module_call;
use crate::error::{PluginError, PluginErrorKind};
use crate::sdk::{first_lines, guard, install_panic_hook, Backend, Config, Host, Instance, Module};
use crate::wire;

/// Host services reached through the ABI.
struct AbiBackend {
    services: HostServicesRef,
    ctx: HostCtx,
}

/// A closure run once through [`BlockingTask`].
struct Once<'a>(&'a mut dyn FnMut());

impl BlockingTask for Once<'_> {
    fn run(&mut self) {
        (self.0)();
    }
}

impl Backend for AbiBackend {
    fn call(&self, kind: u32, payload: &[u8]) -> Result<Vec<u8>, PluginError> {
        (self.services.call())(self.ctx, kind, RSlice::from_slice(payload))
            .into_result()
            .map(RVec::into_vec)
            .map_err(PluginError::from)
    }
    fn log(&self, level: LogLevel, message: &str) {
        (self.services.log())(self.ctx, level, RStr::from_str(message));
    }
    fn now_ms(&self) -> u64 {
        (self.services.now_unix_ms())(self.ctx)
    }
    fn random_bytes(&self, out: &mut [u8]) {
        (self.services.random_bytes())(self.ctx, RSliceMut::from_mut_slice(out));
    }
    fn fire(&self, name: &str, payload: &[u8]) {
        (self.services.fire())(self.ctx, RStr::from_str(name), RSlice::from_slice(payload));
    }
    fn run_blocking(&self, work: &mut dyn FnMut()) {
        let mut task = Once(work);
        (self.services.run_blocking())(
            self.ctx,
            BlockingTask_TO::from_ptr(RMut::new(&mut task), TD_Opaque),
        );
    }
}

/// The instance behind the trait object. An `Option` only so that `Drop` can drop the module
/// under `catch_unwind`: the host drops the object through abi_stable's `extern "C"`
/// destructor, and a module whose `Drop` panicked there would abort the server.
struct Glue<M: Module>(Option<Instance<M>>);

impl<M: Module> Glue<M> {
    fn instance(&self) -> Result<&Instance<M>, PluginError> {
        self.0
            .as_ref()
            .ok_or_else(|| PluginError::internal("the instance was dropped"))
    }
}

impl<M: Module> Drop for Glue<M> {
    fn drop(&mut self) {
        let instance = self.0.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(instance)));
    }
}

fn abi<T>(result: Result<T, PluginError>) -> RResult<T, AbiError> {
    result.map_err(AbiError::from).into()
}

impl<M: Module> PluginInstance for Glue<M> {
    fn call(&self, kind: u32, payload: RSlice<'_, u8>) -> RResult<RVec<u8>, AbiError> {
        abi(guard(|| {
            dispatch_module_call(self.instance()?, kind, payload.as_slice()).map(RVec::from)
        }))
    }

    fn event(&self, name: RStr<'_>, payload: RSlice<'_, u8>) -> RResult<EventFlow, AbiError> {
        abi(guard(|| {
            self.instance()?.event(name.as_str(), payload.as_slice())
        }))
    }

    fn save_state(&self) -> RResult<RVec<u8>, AbiError> {
        abi(guard(|| {
            self.instance()?.module.save_state().map(RVec::from)
        }))
    }

    fn shutdown(&self) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(instance) = self.instance() {
                instance.module.shutdown(&instance.host);
            }
        }));
    }
}

/// `PluginMod::info` for `M` (used by [`crate::export_module!`]).
pub extern "C" fn info<M: Module>() -> PluginInfo {
    let manifest = catch_unwind(M::manifest).unwrap_or_default();
    PluginInfo {
        name: RString::from(M::NAME),
        version: RString::from(M::VERSION),
        build_id: RString::from(option_env!("TESSERA_BUILD_ID").unwrap_or(M::VERSION)),
        manifest: RVec::from(wire::encode(&manifest).unwrap_or_default()),
    }
}

/// `PluginMod::instantiate` for `M` (used by [`crate::export_module!`]).
pub extern "C" fn instantiate<M: Module>(
    header: &'static LibHeader,
    ctx: HostCtx,
    config: RSlice<'_, u8>,
    restore: RSlice<'_, u8>,
) -> RResult<PluginInstanceBox, AbiError> {
    install_panic_hook();
    abi(guard(|| {
        let services = header.init_root_module::<HostServicesRef>().map_err(|e| {
            PluginError::new(
                PluginErrorKind::INCOMPATIBLE,
                first_lines(&e.to_string(), 6),
            )
        })?;
        let host = Host::on(Arc::new(AbiBackend { services, ctx }));
        let config: Config = wire::decode("module config", config.as_slice())?;
        let restore = (!restore.is_empty()).then(|| restore.as_slice());
        let module = M::init(&host, &config, restore)?;
        Ok(PluginInstance_TO::from_value(
            Glue(Some(Instance { module, host })),
            TD_Opaque,
        ))
    }))
}

/// Build the root module for `M` (used by [`crate::export_module!`]).
pub fn root_module<M: Module>() -> PluginModRef {
    PluginMod {
        info: info::<M>,
        instantiate: instantiate::<M>,
    }
    .leak_into_prefix()
}

/// Export a [`Module`] implementation as a Tessera plugin. Use it once, in a `cdylib` crate.
///
/// It emits two symbols: the plain [`crate::abi::PluginMagic`] static the host checks first,
/// and abi_stable's root-module header (layout-checked by the host). Not in the module's own
/// unit-test build: that is no plugin file, and a test that links another module's crate
/// beside it (two modules on one test host) would define both symbols twice.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        /// Cheap first-gate marker read by the host (see `tessera_plugin_api::abi::PluginMagic`).
        #[cfg(not(test))]
        // SAFETY (no_mangle): a plain-data static with a unique, Tessera-specific name; the host
        // reads it as `PluginMagic`, which is `#[repr(C)]` and defined in this same crate version.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub static TESSERA_PLUGIN_MAGIC: $crate::abi::PluginMagic =
            $crate::abi::PluginMagic::CURRENT;

        /// abi_stable's root-module header, under the name its loader looks up.
        #[cfg(not(test))]
        // SAFETY (no_mangle + from_constructor): this is exactly what abi_stable's
        // `#[export_root_module]` expands to; the constructor returns a `PluginModRef`, the type
        // named in `from_constructor`, so the header's layout constant matches the module.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn __tessera_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(|| {
                    $crate::abi::glue::root_module::<$module>()
                })
            }
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    __tessera_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use abi_stable::prefix_type::PrefixTypeTrait;

    use super::*;
    use crate::abi::{BlockingTaskRef, HostServices};

    thread_local! {
        /// Tasks the fake host ran on this thread (tests run in parallel on their own threads).
        static RUN_BY_HOST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    extern "C" fn log(_: HostCtx, _: LogLevel, _: RStr<'_>) {}
    extern "C" fn now(_: HostCtx) -> u64 {
        0
    }
    extern "C" fn random(_: HostCtx, _: RSliceMut<'_, u8>) {}
    extern "C" fn fire(_: HostCtx, _: RStr<'_>, _: RSlice<'_, u8>) {}
    extern "C" fn call(_: HostCtx, _: u32, _: RSlice<'_, u8>) -> RResult<RVec<u8>, AbiError> {
        RResult::RErr(PluginError::host("no calls in this test").into())
    }
    /// Like the host (tokio's `block_in_place` runs the work on the calling thread, after
    /// handing that thread's other tasks away).
    extern "C" fn run_blocking(_: HostCtx, mut task: BlockingTaskRef<'_>) {
        RUN_BY_HOST.set(RUN_BY_HOST.get() + 1);
        task.run();
    }

    fn host() -> Host {
        let services = HostServices {
            log,
            now_unix_ms: now,
            random_bytes: random,
            fire,
            call,
            run_blocking,
        }
        .leak_into_prefix();
        Host::on(Arc::new(AbiBackend {
            services,
            ctx: HostCtx(std::ptr::null()),
        }))
    }

    #[test]
    fn blocking_work_runs_through_the_host_and_returns_its_result() {
        let before = RUN_BY_HOST.get();
        let borrowed = [1u64, 2, 3];
        let sum = host().blocking(|| borrowed.iter().sum::<u64>());
        assert_eq!(sum, 6);
        assert_eq!(RUN_BY_HOST.get(), before + 1);
    }

    #[test]
    fn a_panic_in_blocking_work_resumes_in_the_caller_not_in_the_host() {
        let caught =
            std::panic::catch_unwind(|| host().blocking(|| -> u8 { panic!("derivation failed") }));
        let payload = caught.expect_err("the panic comes back to the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"derivation failed"));
    }

    #[test]
    fn a_host_error_comes_back_typed() {
        let err = host().user_exists("alice").unwrap_err();
        assert_eq!(err.kind, PluginErrorKind::HOST);
        assert_eq!(err.message, "no calls in this test");
    }
}
