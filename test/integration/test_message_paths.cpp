// How the client names paths in its messages: each line names its path once
// (named_once), a server path is named as the shell's user typed it
// (named_as_typed), an error about local files keeps its paths as they are,
// and a local folder joins a name as it is shown (local_join). Pure
// functions: no server, no files.
#include "commands.hpp"
#include "local_files.hpp"
#include "output.hpp"
#include "status.hpp"

#include <doctest/doctest.h>

using namespace ferry;
using namespace ferry::client;

TEST_CASE("a path is named once only where the message names it as a whole")
{
    CHECK(named_once("x", "no file named \"x\"") == "no file named \"x\"");
    CHECK(named_once("x", "\"x\" is a folder") == "\"x\" is a folder");
    CHECK(named_once("x", "cannot open \"x\": No such file") == "cannot open \"x\": No such file");
    CHECK(named_once("x", "(\"x\")") == "(\"x\")");
    // A name holding quotes is not another path's quotes (round 46): the
    // local folder q"x" names no "x".
    CHECK(named_once("x", "\"q\"x\"/x\" is a folder") == "\"x\": \"q\"x\"/x\" is a folder");
    CHECK(named_once("x", "\"a \"x\"\" is a file") == "\"x\": \"a \"x\"\" is a file");
    CHECK(find_named("\"y\" and \"y\"", "\"y\"", 1) == 8);
    CHECK(find_named("\"yy\"", "\"y\"") == std::string::npos);
}

TEST_CASE("the shell names a server path as typed, and leaves an error about local files as it is")
{
    const Error server{ErrorCode::not_a_folder, "\"d/ff/x\" is not a folder"};
    CHECK(named_as_typed(server, "d/ff/x", "ff/x", "d").message == "\"ff/x\" is not a folder");
    CHECK(named_as_typed(server, "d/ff/x", "/d/ff/x", "d").message == "\"/d/ff/x\" is not a folder");
    // The same text about a local folder d/ff/x (round 47's medium).
    const Error local = about_local_files(ErrorCode::local_io, "\"d/ff/x\" is a folder");
    CHECK(local.about_local_files);
    CHECK(named_as_typed(local, "d/ff/x", "ff/x", "d").message == "\"d/ff/x\" is a folder");
    CHECK(local_error("cannot open \"d/ff\"", ENOTDIR).about_local_files);
    // A quote inside another name does not pass for the server path.
    const Error quoted_inside{ErrorCode::exists, "\"e\"d/ff/x\"\" is there"};
    CHECK(named_as_typed(quoted_inside, "d/ff/x", "ff/x", "d").message == quoted_inside.message);
}

TEST_CASE("a local folder joins a name as it is shown, never as an option or a standard stream")
{
    CHECK(local_join("d", "x") == "d/x");
    CHECK(local_join("d/", "x") == "d/x");
    CHECK(local_join("/", "x") == "/x");
    CHECK(local_join(".", "x") == "x");
    CHECK(local_join("", "x") == "x");
    CHECK(local_join(".", "-") == "./-");
    CHECK(local_join("", "-x") == "./-x");
    CHECK(local_join("d", "-x") == "d/-x");
    CHECK(local_join("-", "-m") == "-/-m"); // a folder as typed: the path starts with it
    CHECK(local_join("-", "") == "-");
    CHECK(local_join("d", "") == "d");
    CHECK(local_join(folder_of_typed("o/."), "a") == "o/a");
}
