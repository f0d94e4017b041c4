// addon_common.h: what the module entries of both addons share (cpu_addon.cc, cuda_addon.cc):
// how exports are defined (ops through their OpSpec, op_checks.h), the thread-safe function's
// call into JS that settles a pending Promise, and environment flags. Host compiler only.
#pragma once
#include <napi.h>

#include <cstdlib>
#include <cstring>

#include "op_checks.h"

namespace imagerate {

// Exports are enumerable, so Object.keys(addon) lists the ops a build registers.
inline constexpr napi_property_attributes kExportAttrs =
    static_cast<napi_property_attributes>(napi_writable | napi_enumerable | napi_configurable);

// An instance-method export of a Napi::Addon.
template <class Addon, class Method>
Napi::ClassPropertyDescriptor<Addon> export_method(const char* name, Method method) {
  return Addon::InstanceMethod(name, method, kExportAttrs);
}

// Defines spec.name on `exports`: a function that checks its arguments (spec.check, resolving
// buffer ids in `bufs`), then hands the checked call to submit(args, call), which queues or
// launches the kernel. `bufs` and whatever `submit` holds must live as long as the addon
// instance (they are its members).
template <class Call, class Submit>
void define_op(Napi::Object exports, const OpSpec<Call>& spec, BufferTable& bufs, Submit submit) {
  const OpSpec<Call> s = spec;
  BufferTable* t = &bufs;
  Napi::Function fn = Napi::Function::New(
      exports.Env(),
      [s, t, submit](const Napi::CallbackInfo& info) -> Napi::Value {
        Args a(info, s.name, s.args);
        const Call call = s.check(a, *t);
        submit(a, call);
        return info.Env().Undefined();
      },
      s.name);
  exports.DefineProperty(Napi::PropertyDescriptor::Value(s.name, fn, kExportAttrs));
}

// The CallJs of an addon's thread-safe function: on the JS thread, addon->Settle(env, c)
// settles one pending Promise. While the TSFN is torn down with its environment (env null),
// the completion is dropped without touching JS.
template <class Addon, class Completion>
void settle_on_js(Napi::Env env, Napi::Function, Addon* addon, Completion* c) {
  if (env == nullptr) {
    c->out.SuppressDestruct();
    delete c;
    return;
  }
  addon->Settle(env, c);
}

// True when the environment variable is set to something other than "" or "0".
inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace imagerate
