/* nos3.c — stand-ins for the curl and OpenSSL calls of HDF5's ros3 (read-only S3) driver, for
 * the static gpu-bundle binary only (CMakeLists.txt, ORCHSIM_STATIC). Debian's libhdf5.a is
 * built with that driver; orchsim opens local files only, so the driver is never used, and
 * linking these instead of libcurl.a / libcrypto.a (and their own dependencies) keeps the
 * binary free of both. Each stand-in fails the way the real call fails without a network:
 * curl_global_init succeeds (HDF5 calls it when it registers the driver), everything else
 * returns an error or NULL, so an S3 open would fail cleanly. */
#include <stddef.h>

int curl_global_init(long flags) { return (void)flags, 0; }
void curl_global_cleanup(void) {}
void *curl_easy_init(void) { return NULL; }
void curl_easy_cleanup(void *h) { (void)h; }
int curl_easy_setopt(void *h, int opt, ...) { return (void)h, (void)opt, 43; /* CURLE_BAD_FUNCTION_ARGUMENT */ }
int curl_easy_perform(void *h) { return (void)h, 43; }
int curl_easy_getinfo(void *h, int info, ...) { return (void)h, (void)info, 43; }
void *curl_slist_append(void *list, const char *s) { return (void)list, (void)s, NULL; }
void curl_slist_free_all(void *list) { (void)list; }
const void *EVP_sha256(void) { return NULL; }
unsigned char *HMAC(const void *md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md_out,
                    unsigned int *md_len) {
    (void)md, (void)key, (void)key_len, (void)d, (void)n, (void)md_out, (void)md_len;
    return NULL;
}
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md) { return (void)d, (void)n, (void)md, NULL; }
