/* A PKCS#11 pass-through module for the tests: forwards every call to the module named by
 * FAULT_PKCS11_MODULE (SoftHSM2), and injects the faults a real token or network HSM shows:
 *   FAULT_PKCS11_HANG=C_Login   never return from that function (C_GetFunctionList,
 *                               C_Initialize, C_OpenSession, C_Login, C_FindObjectsInit,
 *                               C_FindObjects, C_GetAttributeValue, C_SignInit, C_Sign)
 *   FAULT_PKCS11_LOGIN_RV=0x5   answer C_Login with this CKR_ value without calling through
 * Stack OpenSC's pkcs11-spy in front of it to count the calls the plugin makes. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST mine;

static void maybe_hang(const char *fn) {
    const char *h = getenv("FAULT_PKCS11_HANG");
    if (h && strcmp(h, fn) == 0)
        for (;;) sleep(3600);
}

static CK_RV w_Initialize(CK_VOID_PTR a) {
    maybe_hang("C_Initialize");
    return real->C_Initialize(a);
}
static CK_RV w_OpenSession(CK_SLOT_ID s, CK_FLAGS f, CK_VOID_PTR a, CK_NOTIFY n,
                           CK_SESSION_HANDLE_PTR h) {
    maybe_hang("C_OpenSession");
    return real->C_OpenSession(s, f, a, n, h);
}
static CK_RV w_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, CK_ULONG l) {
    maybe_hang("C_Login");
    const char *rv = getenv("FAULT_PKCS11_LOGIN_RV");
    if (rv && *rv) return (CK_RV)strtoul(rv, NULL, 0);
    return real->C_Login(s, u, p, l);
}
static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
    maybe_hang("C_FindObjectsInit");
    return real->C_FindObjectsInit(s, t, n);
}
static CK_RV w_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG m,
                           CK_ULONG_PTR c) {
    maybe_hang("C_FindObjects");
    return real->C_FindObjects(s, o, m, c);
}
static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
                                 CK_ULONG n) {
    maybe_hang("C_GetAttributeValue");
    return real->C_GetAttributeValue(s, o, t, n);
}
static CK_RV w_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
    maybe_hang("C_SignInit");
    return real->C_SignInit(s, m, k);
}
static CK_RV w_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig,
                    CK_ULONG_PTR sl) {
    maybe_hang("C_Sign");
    return real->C_Sign(s, d, dl, sig, sl);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (!real) {
        const char *path = getenv("FAULT_PKCS11_MODULE");
        void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
        if (!get || get(&real) != CKR_OK) return CKR_GENERAL_ERROR;
        mine = *real;
        mine.C_Initialize = w_Initialize;
        mine.C_OpenSession = w_OpenSession;
        mine.C_Login = w_Login;
        mine.C_FindObjectsInit = w_FindObjectsInit;
        mine.C_FindObjects = w_FindObjects;
        mine.C_GetAttributeValue = w_GetAttributeValue;
        mine.C_SignInit = w_SignInit;
        mine.C_Sign = w_Sign;
    }
    maybe_hang("C_GetFunctionList");
    *out = &mine;
    return CKR_OK;
}
