drop function complete_referral(uuid, text);
drop table user_referrals;
