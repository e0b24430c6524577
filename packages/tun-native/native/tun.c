// Linux TUN device for Node.js (N-API).
//
// open(name, mtu) -> { fd, name, handle }: opens /dev/net/tun with
// IFF_TUN | IFF_NO_PI in the calling process's network namespace.
// start(handle, cb): a reader thread reads packets in batches and hands each
// batch to cb(data: Buffer, lengths: Buffer<uint32le>) on the JS thread
// through a threadsafe function. The queue is bounded and the call blocks, so a
// slow consumer pushes back on the reader and the kernel drops at the TUN queue
// instead of this process growing without bound.
// write(handle, buf): one packet, written directly from the JS thread.
// close(handle): stops the reader; the reader thread closes the fd itself, so
// no fd is ever closed while it may still be read.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PACKET 65536
#define BATCH_PACKETS 64
#define BATCH_BYTES (256 * 1024)
#define QUEUE_BATCHES 32

typedef struct {
  int fd;
  int wake[2];  // pipe: close() writes one byte so poll() returns
  atomic_int closing;
  int started;
  pthread_t thread;
  napi_threadsafe_function tsfn;
} tun_t;

typedef struct {
  uint32_t count;
  uint32_t used;
  uint32_t lengths[BATCH_PACKETS];
  uint8_t data[];  // BATCH_BYTES + MAX_PACKET
} batch_t;

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, message, error;
  napi_create_string_utf8(env, "ERR_TUN_NATIVE", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_value errno_value;
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_TUN_NATIVE", msg);
  return NULL;
}

static tun_t *get_handle(napi_env env, napi_value value) {
  void *ptr = NULL;
  if (napi_get_value_external(env, value, &ptr) != napi_ok || ptr == NULL) {
    throw_type(env, "expected a TUN handle");
    return NULL;
  }
  return (tun_t *)ptr;
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  tun_t *tun = (tun_t *)context;
  batch_t *batch = (batch_t *)data;
  if (env != NULL && cb != NULL && !atomic_load(&tun->closing)) {
    napi_value args[2], undefined, result;
    void *dst = NULL;
    napi_create_buffer_copy(env, batch->used, batch->data, &dst, &args[0]);
    napi_create_buffer_copy(env, batch->count * sizeof(uint32_t), batch->lengths, &dst, &args[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, cb, 2, args, &result);
  }
  free(batch);
}

static void *reader_main(void *arg) {
  tun_t *tun = (tun_t *)arg;
  batch_t *batch = NULL;
  while (!atomic_load(&tun->closing)) {
    struct pollfd fds[2] = {{.fd = tun->fd, .events = POLLIN}, {.fd = tun->wake[0], .events = POLLIN}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
    if (!(fds[0].revents & POLLIN)) continue;
    // Drain what is ready into one batch.
    for (;;) {
      if (batch == NULL) {
        batch = malloc(sizeof(batch_t) + BATCH_BYTES + MAX_PACKET);
        if (batch == NULL) break;
        batch->count = 0;
        batch->used = 0;
      }
      ssize_t n = read(tun->fd, batch->data + batch->used, MAX_PACKET);
      if (n <= 0) break;  // EAGAIN: drained; anything else: poll reports it
      batch->lengths[batch->count++] = (uint32_t)n;
      batch->used += (uint32_t)n;
      if (batch->count == BATCH_PACKETS || batch->used >= BATCH_BYTES) {
        if (napi_call_threadsafe_function(tun->tsfn, batch, napi_tsfn_blocking) != napi_ok) free(batch);
        batch = NULL;
      }
    }
    if (batch != NULL && batch->count > 0) {
      if (napi_call_threadsafe_function(tun->tsfn, batch, napi_tsfn_blocking) != napi_ok) free(batch);
      batch = NULL;
    }
  }
  free(batch);
  close(tun->fd);
  close(tun->wake[0]);
  close(tun->wake[1]);
  tun->fd = -1;
  napi_release_threadsafe_function(tun->tsfn, napi_tsfn_release);
  return NULL;
}

// Runs on the JS thread once the reader released the threadsafe function.
static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_t *tun = (tun_t *)data;
  pthread_join(tun->thread, NULL);
  // The external still points at tun; mark it dead rather than free it under JS.
  tun->started = 0;
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_t *tun = (tun_t *)data;
  // Only reached when JS dropped the handle; a running reader holds a JS
  // reference through the threadsafe function's callback, so it is stopped.
  if (!tun->started && tun->fd >= 0) {
    close(tun->fd);
    close(tun->wake[0]);
    close(tun->wake[1]);
  }
  if (!tun->started) free(tun);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "open(name, mtu) needs two arguments");
  char name[64];  // larger than IFNAMSIZ so that truncation is detected, not silent
  size_t name_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok)
    return throw_type(env, "name must be a string");
  if (name_len == 0 || name_len > IFNAMSIZ - 1) return throw_type(env, "name is empty or too long for an interface");
  int32_t mtu = 0;
  if (napi_get_value_int32(env, argv[1], &mtu) != napi_ok) return throw_type(env, "mtu must be a number");

  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, name_len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "TUNSETIFF", err);
  }
  if (mtu > 0) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq mreq;
    memset(&mreq, 0, sizeof mreq);
    memcpy(mreq.ifr_name, ifr.ifr_name, IFNAMSIZ);
    mreq.ifr_mtu = mtu;
    int rc = sock < 0 ? -1 : ioctl(sock, SIOCSIFMTU, &mreq);
    int err = errno;
    if (sock >= 0) close(sock);
    if (rc < 0) {
      close(fd);
      return throw_errno(env, "SIOCSIFMTU", err);
    }
  }

  tun_t *tun = calloc(1, sizeof(tun_t));
  if (tun == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  tun->fd = fd;
  if (pipe2(tun->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
    int err = errno;
    close(fd);
    free(tun);
    return throw_errno(env, "pipe2", err);
  }
  atomic_init(&tun->closing, 0);

  napi_value result, handle, name_value, fd_value;
  napi_create_object(env, &result);
  napi_create_external(env, tun, handle_finalize, NULL, &handle);
  napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &name_value);
  napi_create_int32(env, fd, &fd_value);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "name", name_value);
  napi_set_named_property(env, result, "fd", fd_value);
  return result;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "start(handle, callback) needs two arguments");
  tun_t *tun = get_handle(env, argv[0]);
  if (tun == NULL) return NULL;
  if (tun->started || atomic_load(&tun->closing)) return throw_type(env, "TUN reader already started or closed");
  napi_value resource_name;
  napi_create_string_utf8(env, "tun-native-reader", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, resource_name, QUEUE_BATCHES, 1, tun, tsfn_finalize, tun,
                                      call_js, &tun->tsfn) != napi_ok)
    return throw_type(env, "could not create the reader's threadsafe function");
  int rc = pthread_create(&tun->thread, NULL, reader_main, tun);
  if (rc != 0) {
    napi_release_threadsafe_function(tun->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", rc);
  }
  tun->started = 1;
  return NULL;
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type(env, "write(handle, packet) needs two arguments");
  tun_t *tun = get_handle(env, argv[0]);
  if (tun == NULL) return NULL;
  if (atomic_load(&tun->closing) || tun->fd < 0) return throw_errno(env, "write", EBADF);
  void *data = NULL;
  size_t length = 0;
  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    napi_value array_buffer;
    size_t byte_offset;
    napi_get_typedarray_info(env, argv[1], &type, &length, &data, &array_buffer, &byte_offset);
    if (type != napi_uint8_array) return throw_type(env, "packet must be a Uint8Array");
  } else {
    return throw_type(env, "packet must be a Uint8Array");
  }
  ssize_t n = write(tun->fd, data, length);
  napi_value result;
  if (n < 0) {
    // A full queue or an interface that is down loses the packet, as a wire would.
    if (errno == EAGAIN || errno == ENOBUFS || errno == EIO || errno == EINVAL) {
      napi_create_int32(env, -errno, &result);
      return result;
    }
    return throw_errno(env, "write", errno);
  }
  napi_create_int32(env, (int32_t)n, &result);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return throw_type(env, "close(handle) needs one argument");
  tun_t *tun = get_handle(env, argv[0]);
  if (tun == NULL) return NULL;
  if (atomic_exchange(&tun->closing, 1)) return NULL;
  if (tun->started) {
    char byte = 1;
    ssize_t ignored = write(tun->wake[1], &byte, 1);
    (void)ignored;
  } else {
    close(tun->fd);
    close(tun->wake[0]);
    close(tun->wake[1]);
    tun->fd = -1;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
