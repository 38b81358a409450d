#pragma once
// Clang's thread-safety annotations (-Wthread-safety), so that the compiler checks which
// mutex guards which member and which functions expect it held. The clang preset turns
// every finding into an error; under GCC the macros expand to nothing.
//
//   Mutex mu_;
//   std::deque<Batch> queue_ MAMORI_GUARDED_BY(mu_);
//   void take() MAMORI_REQUIRES(mu_);        // callers hold mu_
//   void stop() MAMORI_EXCLUDES(mu_);        // callers must not (it takes mu_)
//
// std::mutex is not annotated in libstdc++: use core/base/mutex.h (Mutex, MutexLock,
// CondVar). See https://clang.llvm.org/docs/ThreadSafetyAnalysis.html.

#if defined(__clang__)
#define MAMORI_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MAMORI_THREAD_ANNOTATION(x)
#endif

#define MAMORI_CAPABILITY(x) MAMORI_THREAD_ANNOTATION(capability(x))
#define MAMORI_SCOPED_CAPABILITY MAMORI_THREAD_ANNOTATION(scoped_lockable)
#define MAMORI_GUARDED_BY(x) MAMORI_THREAD_ANNOTATION(guarded_by(x))
#define MAMORI_PT_GUARDED_BY(x) MAMORI_THREAD_ANNOTATION(pt_guarded_by(x))
#define MAMORI_ACQUIRED_BEFORE(...) MAMORI_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define MAMORI_ACQUIRED_AFTER(...) MAMORI_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define MAMORI_REQUIRES(...) MAMORI_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MAMORI_ACQUIRE(...) MAMORI_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define MAMORI_RELEASE(...) MAMORI_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define MAMORI_TRY_ACQUIRE(...) MAMORI_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define MAMORI_EXCLUDES(...) MAMORI_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define MAMORI_ASSERT_CAPABILITY(x) MAMORI_THREAD_ANNOTATION(assert_capability(x))
#define MAMORI_RETURN_CAPABILITY(x) MAMORI_THREAD_ANNOTATION(lock_returned(x))
// For the few functions the analysis cannot follow; say why next to each use.
#define MAMORI_NO_THREAD_SAFETY_ANALYSIS MAMORI_THREAD_ANNOTATION(no_thread_safety_analysis)
