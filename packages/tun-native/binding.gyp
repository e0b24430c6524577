{
  "targets": [
    {
      "target_name": "tun_native",
      "sources": ["native/tun.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "conditions": [["OS!='linux'", { "sources!": ["native/tun.c"], "sources": ["native/unsupported.c"] }]]
    }
  ]
}
