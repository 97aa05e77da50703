-- Test fixture: a step taking any number of keys; writes each and returns how many it was given.
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end
return #KEYS
