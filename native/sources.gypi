# The one list of native sources. binding.gyp includes it; CMakeLists.txt reads it. Paths are relative to
# this folder.
{
  'sources': [
    'addon.cc',
    'crc64.cc',
    'crc64_pclmul.cc',
    'crc64_vpclmul512.cc',
    'xts_dispatch.cc',
    'xts_aesni.cc',
    'xts_vaes512.cc',
    'xts_vaes.cc',
    'xts_portable.cc',
  ],
}
