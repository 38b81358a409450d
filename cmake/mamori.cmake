# Small helpers so every target is declared the same way, with explicit deps.
#   mamori_library(NAME SRCS a.cc b.cc DEPS x y)
#   mamori_test(NAME SRCS a_test.cc DEPS x)       -> GoogleTest binary registered with CTest
#   mamori_fuzzer(NAME SRCS fuzz_x.cc DEPS x CORPUS dir)
# Every binary a unit or fuzz-corpus test runs is listed in the global property
# MAMORI_UNIT_TEST_TARGETS: the target `unit_tests` builds them all (tools/test's ASan tree).
#       libFuzzer binary with MAMORI_FUZZ=ON (clang), else a replay binary that runs the
#       corpus through the same entry point as a CTest test.

function(mamori_library name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SRCS})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

function(mamori_test name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit)
  set_property(GLOBAL APPEND PROPERTY MAMORI_UNIT_TEST_TARGETS ${name})
endfunction()

function(mamori_fuzzer name)
  cmake_parse_arguments(A "" "CORPUS" "SRCS;DEPS" ${ARGN})
  if(MAMORI_FUZZ)
    add_executable(${name} ${A_SRCS})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${A_DEPS})
  else()
    add_executable(${name}_replay ${A_SRCS} ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cc)
    target_link_libraries(${name}_replay PRIVATE ${A_DEPS})
    add_test(NAME ${name}_replay COMMAND ${name}_replay ${A_CORPUS})
    set_tests_properties(${name}_replay PROPERTIES LABELS fuzz)
    set_property(GLOBAL APPEND PROPERTY MAMORI_UNIT_TEST_TARGETS ${name}_replay)
  endif()
endfunction()
