include $(sort $(wildcard $(BR2_EXTERNAL_SITEEDGE_PATH)/package/*/*.mk))
