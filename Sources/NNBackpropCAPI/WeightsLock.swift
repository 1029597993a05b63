// The lock that guards a model's weights between predicting threads and its trainer.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A readers-writer lock that does not starve its writer, and lets the writer's own thread read.
///
/// glibc's pthread_rwlock prefers readers: with 8 threads calling nnb_predict back to back
/// there is always a reader inside, and a trainer waited a minute for one epoch. Here, once a
/// writer waits, new readers queue behind it, so the writer gets in as soon as the readers
/// already inside leave. All state, the writer's identity included, is read and written under
/// one mutex, so the check "am I the writer?" that lets a training callback predict on its own
/// model is free of data races.
final class WeightsLock {
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var readers = 0
    private var writersWaiting = 0
    private var writer: pthread_t?

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    private func isWriter(_ thread: pthread_t) -> Bool {
        if let w = writer { return pthread_equal(w, thread) != 0 }
        return false
    }

    /// Waits until no writer is inside or waiting, then enters as a reader and returns true;
    /// returns false at once, holding nothing, when the calling thread is the writer.
    func lockShared() -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if isWriter(pthread_self()) { return false }
        while writer != nil || writersWaiting > 0 { pthread_cond_wait(&changed, &mutex) }
        readers += 1
        return true
    }

    func unlockShared() {
        pthread_mutex_lock(&mutex)
        readers -= 1
        if readers == 0 { pthread_cond_broadcast(&changed) }
        pthread_mutex_unlock(&mutex)
    }

    /// Waits until no reader or writer is inside, then enters as the writer.
    func lockExclusive() {
        pthread_mutex_lock(&mutex)
        writersWaiting += 1
        while writer != nil || readers > 0 { pthread_cond_wait(&changed, &mutex) }
        writersWaiting -= 1
        writer = pthread_self()
        pthread_mutex_unlock(&mutex)
    }

    func unlockExclusive() {
        pthread_mutex_lock(&mutex)
        writer = nil
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }
}
