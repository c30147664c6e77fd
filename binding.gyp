{
  'targets': [
    {
      'target_name': 'vdcrypt',
      'includes': ['native/sources.gypi'],
      'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++14'],
      'cflags_cc': ['-std=c++17', '-O3', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror', '-fno-strict-aliasing'],
      'xcode_settings': {
        'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES',
        'OTHER_CPLUSPLUSFLAGS': ['-std=c++17', '-O3', '-Wall', '-Wextra', '-Werror'],
      },
    },
  ],
}
