/* empty.c — translation unit for a library folder that has no sources yet (CMake needs one). */
typedef int os_empty_unit;
