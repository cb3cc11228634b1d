-- The scripting environment, run once in each new Lua state before any user script.
-- `host` (the chunk's argument) is the Rust side: `sha1hex`, `log` and `error_text` always;
-- `call` and `setresp` while a script runs, `register` and `loading` while a library loads.
-- The prelude leaves in it `fcall` (how FCALL calls a function) and `env` (the environment
-- scripts are compiled in).
local host = ...
-- Set below; `loadstring` gives the code it compiles the same environment.
local env
local rawset_raw, rawget, setmetatable, type, error, tostring = rawset, rawget, setmetatable, type, error, tostring
local setmetatable_raw = setmetatable
local select, pcall_raw, xpcall_raw, loadstring_raw = select, pcall, xpcall, loadstring
local error_text = host.error_text
local getfenv_raw, setfenv_raw = getfenv, setfenv

-- Nothing of the host's file system or process.
dofile, loadfile, print = nil, nil, nil

-- Errors the `redis` functions raise: tables, as Redis raises them.
local function raise(text) error({err = text}) end

-- `{err = …}` from a reply text with or without its leading '-': "CODE message", the code
-- ERR when there is none; CR and LF trimmed from the ends (Redis's luaPushErrorBuff).
local function error_table(text)
  local message, code = text, "ERR"
  if text:sub(1, 1) == "-" then
    local space = text:find(" ", 1, true)
    if space then
      code, message = text:sub(2, space - 1), text:sub(space + 1)
    else
      message = text:sub(2)
    end
  end
  message = message:gsub("^[\r\n]+", ""):gsub("[\r\n]+$", "")
  return {err = code .. " " .. message}
end

redis = {}
-- redis.call raises a command's error reply as a table `{err = "CODE message"}`; redis.pcall
-- returns it.
redis.call = function(...)
  local call = host.call
  if call == nil then raise("ERR redis.call/pcall can only be called inside a script invocation") end
  local reply, failed = call(select("#", ...), {...})
  if failed then error(reply) end
  return reply
end
redis.pcall = function(...)
  local call = host.call
  if call == nil then raise("ERR redis.call/pcall can only be called inside a script invocation") end
  local reply = call(select("#", ...), {...})
  return reply
end
redis.setresp = function(...)
  local setresp = host.setresp
  if setresp == nil then raise("ERR redis.setresp can only be called inside a script invocation") end
  if select("#", ...) ~= 1 then raise("ERR redis.setresp() requires one argument.") end
  local failed = setresp(...)
  if failed then raise(failed) end
end
redis.error_reply = function(...)
  local text = ...
  if select("#", ...) ~= 1 or type(text) ~= "string" then
    raise("ERR wrong number or type of arguments")
  end
  if text:sub(1, 1) ~= "-" then text = "-" .. text end
  return error_table(text)
end
redis.status_reply = function(...)
  local text = ...
  if select("#", ...) ~= 1 or type(text) ~= "string" then
    raise("ERR wrong number or type of arguments")
  end
  return {ok = text}
end
redis.sha1hex = function(...)
  local text = ...
  if select("#", ...) ~= 1 then raise("ERR wrong number of arguments") end
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then text = "" end
  return host.sha1hex(text)
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.log = function(...)
  local n = select("#", ...)
  if n < 2 then raise("ERR redis.log() requires two arguments or more.") end
  local level = ...
  if type(level) ~= "number" then raise("ERR First argument must be a number (log level).") end
  if level < 0 or level > 3 then raise("ERR Invalid debug level.") end
  local parts = {}
  for i = 2, n do
    local v = select(i, ...)
    if type(v) == "string" or type(v) == "number" then parts[#parts + 1] = tostring(v) end
  end
  host.log(level, table.concat(parts, " "))
end
-- FUNCTION LOAD: a library registers its functions while it loads (`host.register` is set
-- only then).
local load_redis = {}
load_redis.register_function = function(...)
  local register = host.register
  if register == nil then raise("ERR redis.register_function can only be called on FUNCTION LOAD command") end
  local n = select("#", ...)
  local name, callback, flags, description
  if n == 1 then
    local args = ...
    if type(args) ~= "table" then
      raise("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for k, v in pairs(args) do
      if type(k) ~= "string" then raise("ERR named argument key given to redis.register_function is not a string") end
      if k == "function_name" then
        if type(v) ~= "string" then raise("ERR function_name argument given to redis.register_function must be a string") end
        name = v
      elseif k == "description" then
        if type(v) ~= "string" then raise("ERR description argument given to redis.register_function must be a string") end
        description = v
      elseif k == "callback" then
        if type(v) ~= "function" then raise("ERR callback argument given to redis.register_function must be a function") end
        callback = v
      elseif k == "flags" then
        if type(v) ~= "table" then raise("ERR flags argument to redis.register_function must be a table representing function flags") end
        flags = v
      else
        raise("ERR unknown argument given to redis.register_function")
      end
    end
    if name == nil then raise("ERR redis.register_function must get a function name argument") end
    if callback == nil then raise("ERR redis.register_function must get a callback argument") end
  elseif n == 2 then
    name, callback = ...
    if type(name) ~= "string" then raise("ERR first argument to redis.register_function must be a string") end
    if type(callback) ~= "function" then raise("ERR second argument to redis.register_function must be a function") end
  else
    raise("ERR wrong number of arguments to redis.register_function")
  end
  local flag_names = {}
  if flags ~= nil then
    for _, flag in pairs(flags) do
      if type(flag) ~= "string" then raise("ERR unknown flag given") end
      flag_names[#flag_names + 1] = flag
    end
  end
  local failed = register(name, callback, flag_names, description)
  if failed then raise(failed) end
end

-- FCALL: a function gets KEYS and ARGV as its two arguments.
host.fcall = function(f, handler, keys, argv)
  return xpcall_raw(function() return f(keys, argv) end, handler)
end

-- There is no replication here: its controls are accepted and do nothing.
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = function(...)
  if select("#", ...) ~= 1 then raise("ERR redis.set_repl() requires two arguments.") end
  local flags = ...
  if type(flags) ~= "number" or flags < 0 or flags > 3 then
    raise("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
  end
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REDIS_VERSION = "7.0.15"
redis.REDIS_VERSION_NUM = 0x07000f

-- The text of an error a Rust function raised (cjson, bit, cmsgpack, struct, a stopped
-- script), which reaches Lua as a userdata; other values as they are.
local function as_text(e)
  if type(e) == "userdata" then
    local text = error_text(e)
    if text ~= nil then return text end
  end
  return e
end
-- pcall gives an error table's message as a string, as Lua errors were before tables, and the
-- libraries' errors as the strings their C code raises.
local function unwrap(ok, ...)
  if not ok then
    local e = ...
    if type(e) == "table" and type(rawget(e, "err")) == "string" then
      return false, rawget(e, "err")
    end
    return false, as_text(e)
  end
  return ok, ...
end
pcall = function(...) return unwrap(pcall_raw(...)) end
xpcall = function(f, handler)
  if type(handler) ~= "function" then return xpcall_raw(f, handler) end
  return xpcall_raw(f, function(e) return handler(as_text(e)) end)
end

-- Precompiled (binary) chunks bypass the compiler's checks: text only.
local function text_only(s)
  return type(s) ~= "string" or s:byte(1) ~= 27
end
-- Code compiled at run time sees the scripts' read-only environment, not the real globals.
local function compile(s, name)
  if not text_only(s) then return nil, "binary chunks are not allowed" end
  local f, e = loadstring_raw(s, name)
  if f then setfenv_raw(f, env) end
  return f, e
end
loadstring = compile
load = function(f, name)
  local parts = {}
  if type(f) == "function" then
    while true do
      local piece = f()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then return nil, "reader function must return a string" end
      parts[#parts + 1] = piece
    end
  end
  return compile(table.concat(parts), name)
end

-- Read-only views: globals and libraries cannot be changed by a script (every later script
-- shares this state), and reading a global that does not exist is an error.
local function readonly()
  error("Attempt to modify a readonly table", 2)
end
local protected = {}
local function view(real, strict, while_loading)
  local proxy = {}
  local meta = {__newindex = readonly}
  -- getmetatable gives a read-only view of the metatable, so it cannot be changed either.
  meta.__metatable = setmetatable({}, {__index = meta, __newindex = readonly, __metatable = false})
  if strict then
    meta.__index = function(_, k)
      local from = real
      if while_loading ~= nil and host.loading then from = while_loading end
      local v = from[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end
  else
    meta.__index = real
  end
  setmetatable(proxy, meta)
  protected[proxy] = true
  protected[real] = true
  return proxy
end

local real_globals = getfenv_raw(0)
for _, name in ipairs({"redis", "string", "table", "math", "coroutine", "cjson", "bit",
                       "cmsgpack", "struct"}) do
  if real_globals[name] ~= nil then
    real_globals[name] = view(real_globals[name], false)
  end
end
-- While a library loads (FUNCTION LOAD), its only global is a `redis` with
-- register_function, log and the version, as Redis's library API.
for _, name in ipairs({"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING",
                       "REDIS_VERSION", "REDIS_VERSION_NUM"}) do
  load_redis[name] = redis[name]
end
local load_globals = {redis = view(load_redis, true)}
env = view(real_globals, true, load_globals)
real_globals._G = env
-- Strings' methods (`("x"):upper()`) read the same read-only view.
local string_meta = getmetatable("")
string_meta.__index = real_globals.string
string_meta.__metatable = false

real_globals.setmetatable = function(t, m)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return setmetatable_raw(t, m)
end
rawset = function(t, k, v)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return rawset_raw(t, k, v)
end
getfenv = function(f)
  if f == nil then f = 1 end
  if type(f) == "number" and f > 0 then f = f + 1 end
  local e = getfenv_raw(f)
  if e == real_globals then return env end
  return e
end
setfenv = function(f, t)
  if f == 0 or type(f) == "thread" then error("Attempt to modify a readonly table", 2) end
  if type(f) == "number" and f > 0 then f = f + 1 end
  return setfenv_raw(f, t)
end

-- The environment user scripts are compiled in.
host.env = env
