# fieldsync_embed(TARGET <lib> NAMESPACE <ns> FILES <f>...)
# Generates a C++ source holding each file's bytes and a lookup table
#   std::span<const embedded_file> <ns>::files();
# so that data (SQL, JSON declarations, web assets) ships inside the binary.
set(FIELDSYNC_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_run.cmake)

function(fieldsync_embed)
    cmake_parse_arguments(E "" "TARGET;NAMESPACE;BASE" "FILES" ${ARGN})
    set(out ${CMAKE_CURRENT_BINARY_DIR}/${E_TARGET}_embedded.cpp)
    set(abs_files)
    foreach(f ${E_FILES})
        get_filename_component(a ${f} ABSOLUTE)
        list(APPEND abs_files ${a})
    endforeach()
    string(REPLACE ";" "|" files_arg "${abs_files}")
    add_custom_command(
        OUTPUT ${out}
        COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNS=${E_NAMESPACE} -DBASE=${E_BASE}
                "-DFILES=${files_arg}" -P ${FIELDSYNC_EMBED_SCRIPT}
        DEPENDS ${abs_files} ${FIELDSYNC_EMBED_SCRIPT}
        COMMENT "Embedding ${E_NAMESPACE} files"
        VERBATIM)
    target_sources(${E_TARGET} PRIVATE ${out})
endfunction()
